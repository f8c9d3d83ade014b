"""Verifies webhook deliveries with the Standard Webhooks reference library.

Reads one JSON object from stdin: {"secret": "whsec_...", "deliveries":
[{"headers": {...}, "body": "..."}, ...]}. Prints the verified payloads as
a JSON list and exits 0; on any failure prints why and exits 1.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> int:
    request = json.load(sys.stdin)
    webhook = Webhook(request["secret"])
    verified = []
    for delivery in request["deliveries"]:
        try:
            verified.append(webhook.verify(delivery["body"], delivery["headers"]))
        except WebhookVerificationError as error:
            print(f"not verified: {error}", file=sys.stderr)
            return 1
    json.dump(verified, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
