"""CLI commands: every module here that defines ``cli`` (a click command or group) is added.

``flask --app server users ...``, ``flask --app server areas load``, ``flask --app server
bootstrap`` and the commands later issues add all come from here.
"""

import importlib
import pkgutil

from flask import Flask


def register_commands(app: Flask) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        command = getattr(module, "cli", None)
        if command is not None:
            app.cli.add_command(command)
