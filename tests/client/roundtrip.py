"""A client generated from /api/openapi.json by openapi-python-client, used as an integrator
would: log in, create a task with every task field, read it back equal, run it, read its
execution. Run by tests/it/api_contract.rs with the generated package `reportd_client` on
PYTHONPATH.

Usage: roundtrip.py BASE_URL USERNAME PASSWORD
"""

import sys
import time

from reportd_client import AuthenticatedClient, Client
from reportd_client.api.auth import login
from reportd_client.api.logs import get_execution
from reportd_client.api.tasks import create_task, get_task, run_task
from reportd_client.models import (
    ExecutionDetail,
    LoginAnswer,
    LoginBody,
    RunStarted,
    TaskSpec,
    TaskView,
)

base, username, password = sys.argv[1:4]

answer = login.sync(client=Client(base_url=base), body=LoginBody(username=username, password=password))
assert isinstance(answer, LoginAnswer), answer
client = AuthenticatedClient(base_url=base, token=answer.token)

# Every key of the task-file schema. (The webhook is told on failure only; this run succeeds.)
task = {
    "name": "client-roundtrip",
    "description": "made by the generated client",
    "data_source": "demo",
    "cron": "0 9 * * 1-5",
    "timezone": "Asia/Shanghai",
    "enabled": False,
    "sheets": [
        {"name": "Orders", "sql": "SELECT 1 AS n"},
        {"name": "More", "sql": "SELECT 2 AS n"},
    ],
    "output": {"format": "csv", "filename": "{task_name}_{date}"},
    "timeout": 120,
    "retries": 1,
    "notify": {
        "webhook": {"url": "http://127.0.0.1:9/hook", "secret": "hook-secret"},
        "preview_rows": 5,
        "on": ["failure"],
        "skip_empty": True,
    },
    "alert": {"condition": "rows > 0", "sql": "SELECT 3 AS n", "repeat": "always"},
}
created = create_task.sync(client=client, body=TaskSpec.from_dict(task))
assert isinstance(created, TaskView), created
shown = get_task.sync(client=client, id=str(created.id))
assert isinstance(shown, TaskView), shown
back = shown.to_dict()
# Secrets are shown masked; sent back as "***" they keep the stored value.
expected = {**task, "notify": {**task["notify"], "webhook": {"url": "***", "secret": "***"}}}
for key, value in expected.items():
    assert back.get(key) == value, f"{key}: sent {value!r}, read back {back.get(key)!r}"
assert created.to_dict() == back
# Every key is a typed attribute of the model (none left over as an unknown property).
assert shown.additional_properties == {}, shown.additional_properties
assert (shown.name, shown.data_source, shown.cron) == (task["name"], "demo", task["cron"])
assert [s.name for s in shown.sheets] == ["Orders", "More"]
assert shown.output.format_.value == "csv" and shown.alert.repeat.value == "always"

started = run_task.sync(client=client, id=str(created.id))
assert isinstance(started, RunStarted), started
assert started.execution_id is not None
deadline = time.monotonic() + 30
while True:
    execution = get_execution.sync(client=client, id=started.execution_id)
    assert isinstance(execution, ExecutionDetail), execution
    if execution.to_dict().get("status") != "running" or time.monotonic() > deadline:
        break
    time.sleep(0.2)
detail = execution.to_dict()
assert detail.get("status") == "success", detail
print("ok", created.id, started.execution_id, detail.get("status"))
