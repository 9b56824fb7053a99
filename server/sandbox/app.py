"""The Starlette application that plays X."""

from __future__ import annotations

from starlette.applications import Starlette

from . import admin, routes_activity, routes_dm, routes_media, routes_oauth, routes_posts, routes_users
from .state import Sandbox


def create_app(sandbox: Sandbox) -> Starlette:
    app = Starlette(
        routes=[
            *routes_users.routes(sandbox),
            *routes_posts.routes(sandbox),
            *routes_dm.routes(sandbox),
            *routes_media.routes(sandbox),
            *routes_oauth.routes(sandbox),
            *routes_activity.routes(sandbox),
            *admin.routes(sandbox),
        ]
    )
    app.state.sandbox = sandbox
    return app
