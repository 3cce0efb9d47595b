"""WSGI entry point for production servers: `gunicorn webapp.wsgi:app`."""

from webapp import create_app
from webapp.process import tune_garbage_collector

app = create_app()
tune_garbage_collector()
