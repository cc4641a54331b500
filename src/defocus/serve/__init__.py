"""``defocus serve``: a web page on this machine for looking at blur and defocus maps, and the HTTP API behind it.

:func:`defocus.serve.app.create_app` builds the FastAPI application (``pip install 'defocus[serve]'``);
:mod:`defocus.serve.command` is the command line. The page (``static/``) is plain HTML, CSS and JavaScript served
by the application itself: nothing is loaded from elsewhere. docs/serve.md describes the API.
"""

#: Default largest upload, in bytes: the whole request body (the photo and a few hundred bytes of form framing).
MAX_UPLOAD_BYTES = 50_000_000
