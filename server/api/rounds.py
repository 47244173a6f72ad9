"""Rounds: named verification campaigns."""

from flask import g
from flask.views import MethodView
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from server.api.blueprint import Blueprint
from server.api.openapi import errors, links
from server.auth import login_required
from server.extensions import db
from server.services import assignments as service
from sync.db import write_transaction
from sync.models.assignment import Round

blp = Blueprint("rounds", __name__, url_prefix="/api/v1/rounds", description="Rounds")


class RoundCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=3, max=200))
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True, metadata={
        "description": "On or after starts_on (422 `invalid_dates` otherwise)."})


class RoundSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    starts_on = fields.Date()
    ends_on = fields.Date()
    created_at = fields.DateTime()
    state = fields.String(metadata={"enum": ["open", "closed"], "description":
                                    "`closed`: no more assignments or visits in this round."})
    closed_at = fields.DateTime(allow_none=True)


@blp.route("")
class Rounds(MethodView):
    @login_required()
    @blp.doc(operationId="listRounds")
    @blp.response(200, RoundSchema(many=True))
    def get(self):
        """Every round, newest first."""
        return db.session.scalars(select(Round).order_by(Round.starts_on.desc(),
                                                         Round.id.desc())).all()

    @login_required("supervisor", "admin")
    @blp.doc(operationId="createRound")
    @errors({409: ["round_exists"], 422: ["invalid_dates"]})
    @links(201, {"closeRound": {"operationId": "closeRound",
                                "parameters": {"round_id": "$response.body#/id"}}})
    @blp.arguments(RoundCreateSchema, example={"name": "Groundcheck 2026-Q1 Prioritas",
                                               "starts_on": "2026-01-05",
                                               "ends_on": "2026-03-31"})
    @blp.response(201, RoundSchema)
    def post(self, body):
        """Start a round, e.g. "Groundcheck 2026-Q1 Prioritas"."""
        with write_transaction(db.session):
            row = service.create_round(db.session, g.user, body["name"], body["starts_on"],
                                       body["ends_on"])
        return row


class RoundClosedSchema(RoundSchema):
    ended = fields.Integer(metadata={"description": "open assignments ended by the closing"})


@blp.route("/<id:round_id>/close")
class RoundClose(MethodView):
    @login_required("admin")
    @blp.doc(operationId="closeRound")
    @errors({409: ["round_closed"]})
    @blp.response(200, RoundClosedSchema)
    def post(self, round_id):
        """Close a round: its open assignments end (status `closed`) and leave the phones, so
        that the next round can assign the same families."""
        with write_transaction(db.session):
            row, ended = service.close_round(db.session, g.user, round_id)
            result = {"id": row.id, "name": row.name, "starts_on": row.starts_on,
                      "ends_on": row.ends_on, "created_at": row.created_at,
                      "state": row.state, "closed_at": row.closed_at, "ended": ended}
        return result
