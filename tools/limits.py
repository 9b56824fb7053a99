"""How much one call may carry: the numbers the tool schemas advertise and tools/ enforces.

Constants only, so the MCP layer can state them in its tool schemas at start-up without importing the
modules that enforce them (posts.py and its text counting are loaded on the first post).
"""

MAX_POST_IMAGES = 4
MAX_DM_ATTACHMENTS = 1
# Not X's limit (X documents none for threads made through the API): one call stays bounded, and a
# longer thread is made in parts with continue_from.
MAX_THREAD_POSTS = 25
