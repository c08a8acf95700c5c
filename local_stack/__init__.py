"""The local stack developers and the e2e tests run (``make up``, ``python -m local_stack``):
the supervisor and its processes (``supervisor``, ``children``; ``process`` starts a stack
for a test or a benchmark), moto's server with the patches that make it behave like AWS
(``moto_dynamodb``, ``moto_sns``), the CDN stand-in and API.md's bodies for what
http.server refuses (``http_errors``), a webhook receiver (``webhook_receiver``) and the
demo (``demo``, ``make demo``). Nothing here ships to AWS."""
