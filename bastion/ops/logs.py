"""Log lines as JSON objects (BASTION_LOG_FORMAT=json), one a line, with the request or run
id they belong to. Messages already carry ids only; no field here adds personal data."""

import json
import logging
from datetime import UTC, datetime

from bastion.ops import context

# Attributes every LogRecord has; anything else was passed through `extra=` on purpose.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }

        request = context.request_id.get()
        run = context.run_id.get()
        if request:
            line["request_id"] = request
        if run:
            line["run_id"] = run

        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value

        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
