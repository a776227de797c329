"""Azure Functions entry point: the HTTP app (one anonymous catch-all function) and the
timers, nothing more."""

import azure.functions as func

from functions.fold_timer import bp as fold_timer
from functions.http_app import create_app
from functions.timers import bp as timers

asgi = create_app()
app = func.AsgiFunctionApp(app=asgi, http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(fold_timer)
app.register_functions(timers)
