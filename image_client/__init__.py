"""The client SDK, written to be copied into other projects (standard library,
``requests`` and, for the verifier, ``cryptography``): the upload client (``client``)
and its command line (``upload``, ``scripts/upload.py``), and the verifier of SNS
deliveries a webhook subscriber runs (``sns_verify``, docs/webhooks.md)."""
