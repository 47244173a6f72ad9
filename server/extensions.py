"""Flask extensions, created unbound here and bound to the app in ``create_app``."""

from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy

from sync.db import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
compress = Compress()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


class TapakApi(Api):
    """flask-smorest's Api, answering errors in the contract's envelope."""

    def handle_http_exception(self, error):
        from server.errors import http_error_response

        return http_error_response(error)


api = TapakApi()
