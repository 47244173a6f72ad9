"""The core of Tapak, free of Flask: plain functions over a SQLAlchemy session and plain data."""
