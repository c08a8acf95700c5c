"""Everything Chalice deploys besides app.py."""
