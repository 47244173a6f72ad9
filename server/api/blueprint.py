"""The API's Blueprint: flask-smorest's, reading arguments with ``params.TapakParser``.

flask-smorest binds a blueprint's parser when it decorates a view, so the parser is a class
attribute here (the way flask-smorest documents it), and every API module uses this class.
"""

from flask_smorest import Blueprint as SmorestBlueprint

from server.params import TapakParser


class Blueprint(SmorestBlueprint):
    ARGUMENTS_PARSER = TapakParser()
