"""Flask extensions, created unbound here and bound to the app in ``create_app``."""

from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy

from server.api.openapi import TapakMarshmallowPlugin
from server.schemas import ErrorSchema
from sync.db import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
compress = Compress()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


class TapakApi(Api):
    """flask-smorest's Api, answering and documenting errors in the contract's envelope.

    No catch-all ``default`` response: each operation lists the statuses it can answer
    (``server.api.openapi.complete_spec``).
    """

    DEFAULT_ERROR_RESPONSE_NAME = None
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error):
        from server.errors import http_error_response

        return http_error_response(error)



api = TapakApi(spec_kwargs={"marshmallow_plugin": TapakMarshmallowPlugin()})
