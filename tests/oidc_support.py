"""A real OpenID Connect provider on loopback for the login tests (``oidc-provider-mock``).

It is a complete authorization-code provider (discovery document, signed ID tokens, JWKS,
userinfo): the browser is redirected to its authorisation form, the test types the subject
(used as the e-mail claim) and the provider redirects back to the dashboard's
``/oauth2callback``, exactly like a hospital identity provider would.
"""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from tests.browser_support import free_port


@contextmanager
def oidc_provider(timeout: float = 60.0):
    """Start the provider on 127.0.0.1; yield its base URL; stop it."""
    port = free_port()
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"oidc-provider-{port}.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"})
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the OIDC provider did not start, see {log.name}") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def write_streamlit_secrets(folder: Path, provider_url: str) -> Path:
    """The ``[auth]`` secrets Streamlit's ``st.login`` reads (client registered on the fly)."""
    path = Path(folder) / "secrets.toml"
    path.write_text(
        "[auth]\n"
        'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "displasia-dashboard"\n'
        f'client_secret = "{secrets.token_hex(16)}"\n'
        f'server_metadata_url = "{provider_url}/.well-known/openid-configuration"\n')
    path.chmod(0o600)
    return path
