"""OAuth 2.0 for X: login (authorization code + PKCE), the token manager, and token storage."""
