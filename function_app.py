"""Azure Functions entry point: the HTTP app (one anonymous catch-all function) and the
timers, nothing more."""

import azure.functions as func

from functions.http_app import create_app
from functions.timers import ALL as TIMERS

asgi = create_app()
app = func.AsgiFunctionApp(app=asgi, http_auth_level=func.AuthLevel.ANONYMOUS)
for blueprint in TIMERS:
    app.register_functions(blueprint)
