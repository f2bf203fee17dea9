"""Runnable examples of bastion in a Flask app (``flask_app``) and a Django + DRF project (``django_app``)."""
