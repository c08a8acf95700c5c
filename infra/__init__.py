"""The stages' infrastructure, for the operator who deploys: provisioning (``provision``),
the per-function IAM policies (``iam_policies``), the dashboard and alarms
(``monitoring_template``), API Gateway's error bodies (``gateway_responses``), the Lambda
package (``package_lambda``) and each stage's settings from ``.chalice/config.json``
(``stage_config``, read by every other tooling package). Run through ``scripts/``."""
