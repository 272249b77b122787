"""How much memory a large upload adds to the server process, on local storage and on S3.

Starts the registry under gunicorn (one sync worker) against a fresh data dir, signs in through
the login page, and uploads one file of --size-mb through the "Register a new version" form,
streamed from a generator (the client never holds the file). Reports the worker's peak resident
memory (VmHWM) before and after, for local files and for S3 (moto's server on loopback).

    .venv/bin/python bench/upload_memory.py --size-mb 1024
"""

import argparse
import http.client
import http.cookiejar
import os
import re
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import base_env, children, gunicorn, manage, rss_kib, temp_data_dir  # noqa: E402

CHUNK = 1024 * 1024
PASSWORD = "bench-password-123456"  # noqa: S105


def setup(env: dict) -> None:
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "collectstatic", "--noinput", "-v0")
    manage(
        env, "shell", "-c",
        "from django.contrib.auth.models import User;"
        "from models_app import services;"
        f"u = User.objects.create_user('bench', password='{PASSWORD}');"
        "services.model_create(actor=u, name='big-model')",
    )  # fmt: skip


def sign_in(base: str) -> tuple[urllib.request.OpenerDirector, http.cookiejar.CookieJar]:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(base + "/accounts/login/").read()
    token = next(c.value for c in jar if c.name == "csrftoken")
    data = urllib.parse.urlencode(
        {"username": "bench", "password": PASSWORD, "csrfmiddlewaretoken": token}
    ).encode()
    opener.open(urllib.request.Request(base + "/accounts/login/", data=data)).read()
    return opener, jar


def form_token(opener, url: str) -> str:
    html = opener.open(url).read().decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def upload(base: str, opener, jar, size: int) -> tuple[int, float]:
    form_url = base + "/models/big-model/versions/new/"
    token = form_token(opener, form_url)
    boundary = "----registrybench"
    fields = {
        "csrfmiddlewaretoken": token, "description": "bench", "paths": "weights.bin",
        "metrics-TOTAL_FORMS": "0", "metrics-INITIAL_FORMS": "0",
        "params-TOTAL_FORMS": "0", "params-INITIAL_FORMS": "0",
        "tags-TOTAL_FORMS": "0", "tags-INITIAL_FORMS": "0",
        "datasets-TOTAL_FORMS": "0", "datasets-INITIAL_FORMS": "0",
        "parents-TOTAL_FORMS": "0", "parents-INITIAL_FORMS": "0",
    }  # fmt: skip
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
        f'filename="weights.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    parsed = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)
    cookies = "; ".join(f"{c.name}={c.value}" for c in jar)
    conn.putrequest("POST", "/models/big-model/versions/new/")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + size + len(tail)))
    conn.putheader("Cookie", cookies)
    conn.putheader("Referer", form_url)
    conn.endheaders()
    started = time.perf_counter()
    conn.send(head)
    block = os.urandom(CHUNK)
    sent = 0
    while sent < size:
        n = min(CHUNK, size - sent)
        conn.send(block[:n])
        sent += n
    conn.send(tail)
    response = conn.getresponse()
    response.read()
    return response.status, time.perf_counter() - started


def measure(label: str, env: dict, size: int) -> dict:
    with gunicorn(env) as (base, master):
        opener, jar = sign_in(base)
        form_token(opener, base + "/models/big-model/versions/new/")  # warm the worker
        (worker,) = children(master)
        before = rss_kib(worker, "VmHWM") / 1024
        status, seconds = upload(base, opener, jar, size)
        after = rss_kib(worker, "VmHWM") / 1024
    return {
        "storage": label, "status": status, "size_mib": size / CHUNK, "seconds": seconds,
        "mib_per_s": size / CHUNK / seconds, "peak_before_mib": before, "peak_after_mib": after,
        "added_mib": after - before,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--only", choices=["local", "s3"], default=None)
    args = parser.parse_args()
    size = args.size_mb * CHUNK
    rows = []
    if args.only in (None, "local"):
        env = base_env(temp_data_dir(), REGISTRY_MAX_UPLOAD_BYTES=str(size + CHUNK * 16))
        setup(env)
        rows.append(measure("local files", env, size))
    if args.only in (None, "s3"):
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        import logging

        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id="x", aws_secret_access_key="x",
            region_name="us-east-1",
        ).create_bucket(Bucket="bench")  # fmt: skip
        env = base_env(
            temp_data_dir(), S3_BUCKET="bench", S3_ENDPOINT_URL=endpoint, S3_REGION="us-east-1",
            S3_ACCESS_KEY_ID="x", S3_SECRET_ACCESS_KEY="x", AWS_EC2_METADATA_DISABLED="true",
            REGISTRY_MAX_UPLOAD_BYTES=str(size + CHUNK * 16),
        )  # fmt: skip
        setup(env)
        try:
            rows.append(measure("S3 (moto)", env, size))
        finally:
            server.stop()
    print(f"{'storage':<12} {'status':>6} {'size MiB':>9} {'s':>7} {'MiB/s':>7} "
          f"{'peak before':>12} {'peak after':>11} {'added MiB':>10}")  # fmt: skip
    for r in rows:
        print(f"{r['storage']:<12} {r['status']:>6} {r['size_mib']:>9.0f} {r['seconds']:>7.1f} "
              f"{r['mib_per_s']:>7.0f} {r['peak_before_mib']:>12.1f} {r['peak_after_mib']:>11.1f} "
              f"{r['added_mib']:>10.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
