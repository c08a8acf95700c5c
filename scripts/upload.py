"""``python scripts/upload.py --user USER FILE...``: upload files as a client would (image_client.upload)."""

from image_client.upload import cli

if __name__ == "__main__":
    raise SystemExit(cli())
