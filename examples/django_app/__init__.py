"""A minimal Django + DRF project behind bastion (settings, urls, views, wsgi)."""
