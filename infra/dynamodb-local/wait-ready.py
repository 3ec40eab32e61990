"""Waits until DynamoDB Local answers a ListTables call.

usage: wait-ready.py ENDPOINT PID TIMEOUT_SECONDS
Exits 0 when it answers, 1 when the process died or the time ran out. A PID
of - watches no process (DynamoDB Local started elsewhere).
"""
import json
import os
import sys
import time
import urllib.request

endpoint, pid, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline = time.monotonic() + timeout
request = urllib.request.Request(
    endpoint,
    data=b"{}",
    method="POST",
    headers={
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "DynamoDB_20120810.ListTables",
        # DynamoDB Local wants a SigV4-shaped header; it does not check the signature.
        "Authorization": "AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=host, Signature=0",
    },
)
while time.monotonic() < deadline:
    try:
        if pid != "-":
            os.kill(int(pid), 0)
    except OSError:
        sys.exit(1)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            if "TableNames" in json.load(response):
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit(1)
