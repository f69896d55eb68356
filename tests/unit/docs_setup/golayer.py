# Set-up run in front of the docs' <!-- run: after golayer --> fragments (tests/unit/test_docs_examples.py):
# `info` is the dbInfo of the test server the fragment runs on.
import json
import os

import odm  # noqa: F401  (the fragments use it)

info = json.loads(os.environ["ODM_DB_INFO"])
