"""An example HTTP user service on odm: register, fetch, list, update and delete users, issue tokens.

In the spirit of the Microkubes user service (Go): FastAPI on uvicorn, one seed-format JSON config
choosing the backend (SQLite by default), the async API throughout. Run it with
``python -m examples.user_service`` from the repository root; see README.md.
"""
