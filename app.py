"""The Image Service Chalice app: wiring only.

Every Lambda function's handler is here (the API's ``app``, the processor's
``handle_upload_events``, the sweep's ``sweep_uploads``), so every function's init runs
this module: the collector pause, JSON logging, tracing, the prewarm ahead of traffic.
"""

import gc

# A cold start imports ~700 modules whose objects all live as long as the process; left on,
# the collector walks that growing heap over a hundred times during the import (20-40 ms).
gc.disable()

import os

from chalice.app import Chalice, CloudWatchEvent, SQSEvent

from chalicelib import coldstart, logs, tracing
from chalicelib.api import cors, http
from chalicelib.api.demo_page import demo_page
from chalicelib.api.health import health_api
from chalicelib.api.images import images_api
from chalicelib.api.internal import internal_api
from chalicelib.api.webhooks import webhooks_api
from chalicelib.events import schedule, uploads

app = Chalice(app_name="image-service")
logs.configure()
tracing.configure()
http.install(app)
app.register_blueprint(health_api)
app.register_blueprint(images_api)
app.register_blueprint(internal_api)
app.register_blueprint(webhooks_api)
if os.environ.get("STAGE") == "local":
    app.register_blueprint(demo_page)
# After every route: each path gets its OPTIONS preflight route, every answer CORS headers.
cors.install(app)


@app.on_sqs_message(queue=uploads.UPLOAD_QUEUE_NAME, batch_size=uploads.BATCH_SIZE)
def handle_upload_events(event: SQSEvent) -> uploads.BatchResponse:
    # Chalice returns this to Lambda as it is: the partial batch response.
    return uploads.handle_batch(event)


@app.schedule(schedule.SWEEP_RATE, description=schedule.SWEEP_DESCRIPTION)
def sweep_uploads(event: CloudWatchEvent) -> None:
    schedule.sweep(event)


if coldstart.init_ahead_of_traffic(os.environ):
    coldstart.prewarm()

# What init built stays for the life of the process: keep it out of every later collection.
gc.freeze()
gc.enable()
