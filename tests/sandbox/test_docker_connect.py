"""Which daemon DockerSandbox talks to without a ``base_url``: DOCKER_HOST, and
TLS from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH, as the ``docker`` command does.

The TLS case starts a second private dockerd with ``--tlsverify`` on
127.0.0.1, with a CA, server and client certificates made here with
``cryptography``.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sauci.core.models import Step
from sauci.exceptions import SandboxError
from sauci.testing.sandbox import MemoryLog

OWNER = "sauci-test-connect"
DOCKER_VARIABLES = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in DOCKER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def run_echo(
    sandbox: Any, workspace: Path, script: str = "echo reached"
) -> tuple[int | None, bytes]:
    log = MemoryLog()
    result = sandbox.run(
        Step(name="t", run=script, shell=("sh", "-c")),
        workspace,
        log,
        env={"PATH": "/bin"},
        cancel=threading.Event(),
        label="b1-connect",
    )
    return result.exit_code, bytes(log.data)


def test_docker_host_is_used_without_base_url(
    dockerd: str, busybox_image: str, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sauci.sandbox.docker import DockerSandbox

    clean_env.setenv("DOCKER_HOST", dockerd)
    sandbox = DockerSandbox(image=busybox_image, owner=OWNER)
    try:
        assert (0, b"reached\n") == run_echo(sandbox, tmp_path)
    finally:
        sandbox.close()


def test_unreachable_docker_host_is_a_clear_error(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sauci.sandbox.docker import DockerSandbox

    url = f"unix://{tmp_path}/nothing.sock"
    clean_env.setenv("DOCKER_HOST", url)
    with pytest.raises(SandboxError, match=re.escape(f"cannot reach the docker daemon at {url}")):
        DockerSandbox(owner=OWNER)


def test_base_url_wins_over_docker_host(
    dockerd: str, busybox_image: str, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sauci.sandbox.docker import DockerSandbox

    clean_env.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    sandbox = DockerSandbox(base_url=dockerd, image=busybox_image, owner=OWNER)
    try:
        assert (0, b"reached\n") == run_echo(sandbox, tmp_path)
    finally:
        sandbox.close()


# -- TLS ------------------------------------------------------------------------


def _certificates(directory: Path) -> tuple[Path, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate.

    Returns (server dir, client dir); the client dir is laid out as
    DOCKER_CERT_PATH expects (ca.pem, cert.pem, key.pem).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("sauci test CA"))
        .issuer_name(name("sauci test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(common: str, usage: x509.ObjectIdentifier, server: bool) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)

    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    server_dir, client_dir = directory / "server", directory / "client"
    for d, (cert, key) in (
        (server_dir, leaf("127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH, True)),
        (client_dir, leaf("sauci", ExtendedKeyUsageOID.CLIENT_AUTH, False)),
    ):
        d.mkdir(mode=0o700)
        (d / "ca.pem").write_bytes(ca_pem)
        (d / "cert.pem").write_bytes(cert)
        (d / "key.pem").write_bytes(key)
    return server_dir, client_dir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tls_dockerd(dockerd: str, busybox_image: str) -> Iterator[tuple[str, Path]]:
    """(``tcp://127.0.0.1:PORT``, client cert dir) of a dockerd that verifies clients."""
    import docker

    state = Path(tempfile.mkdtemp(prefix="sauci-tlsd-", dir="/tmp"))
    server, client = _certificates(state)
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    logfile = open(state / "dockerd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            str(shutil.which("dockerd")),
            "--data-root",
            str(state / "data"),
            "--exec-root",
            str(state / "exec"),
            "--pidfile",
            str(state / "dockerd.pid"),
            "-H",
            url,
            "--tlsverify",
            "--tlscacert",
            str(server / "ca.pem"),
            "--tlscert",
            str(server / "cert.pem"),
            "--tlskey",
            str(server / "key.pem"),
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--storage-driver=overlay2",
        ],
        stdout=logfile,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    tls = docker.tls.TLSConfig(
        client_cert=(str(client / "cert.pem"), str(client / "key.pem")),
        ca_cert=str(client / "ca.pem"),
        verify=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dockerd exited: {(state / 'dockerd.log').read_text()[-2000:]}")
            # A fixed API version (no request yet), then this environment's
            # REQUESTS_CA_BUNDLE kept out of the way of the test CA.
            api = docker.APIClient(base_url=url, tls=tls, version="1.41", timeout=60)
            api.trust_env = False
            try:
                api.ping()
                break
            except (docker.errors.DockerException, OSError):  # requests' errors are OSErrors
                api.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        # The image, copied over from the first private daemon.
        source = docker.APIClient(base_url=dockerd, version="auto", timeout=60)
        api.load_image(b"".join(source.get_image(busybox_image)))
        source.close()
        api.close()
        yield url, client
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logfile.close()
        subprocess.run(
            ["umount", "-l", str(state / "exec" / "netns" / "default")],
            stderr=subprocess.DEVNULL,
            check=False,
        )
        subprocess.run(
            ["umount", "-R", "-l", str(state / "data")], stderr=subprocess.DEVNULL, check=False
        )
        shutil.rmtree(state, ignore_errors=True)


def test_tls_from_docker_tls_verify_and_cert_path(
    tls_dockerd: tuple[str, Path],
    busybox_image: str,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from sauci.sandbox.docker import DockerSandbox

    url, certs = tls_dockerd
    clean_env.setenv("DOCKER_HOST", url)
    clean_env.setenv("DOCKER_TLS_VERIFY", "1")
    clean_env.setenv("DOCKER_CERT_PATH", str(certs))
    sandbox = DockerSandbox(image=busybox_image, owner=OWNER)
    try:
        assert (0, b"reached\n") == run_echo(sandbox, tmp_path)
        # Many TLS records, some held decrypted by the TLS layer: all arrive.
        code, output = run_echo(sandbox, tmp_path, "head -c 5000000 /dev/zero | tr '\\0' x; echo")
        assert (0, 5_000_001, b"x" * 5_000_000 + b"\n") == (code, len(output), output)
    finally:
        sandbox.close()


def test_tls_daemon_refuses_a_client_without_the_variables(
    tls_dockerd: tuple[str, Path], clean_env: pytest.MonkeyPatch
) -> None:
    # Proves the daemon above does verify: DOCKER_TLS_VERIFY is what got in.
    from sauci.sandbox.docker import DockerSandbox

    url, _ = tls_dockerd
    clean_env.setenv("DOCKER_HOST", url)
    with pytest.raises(SandboxError, match=re.escape(f"cannot reach the docker daemon at {url}")):
        DockerSandbox(owner=OWNER)


def test_missing_certificates_are_a_clear_error(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sauci.sandbox.docker import DockerSandbox

    clean_env.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    clean_env.setenv("DOCKER_TLS_VERIFY", "1")
    clean_env.setenv("DOCKER_CERT_PATH", str(tmp_path / "no-certs"))
    with pytest.raises(
        SandboxError, match=re.escape("cannot reach the docker daemon at tcp://127.0.0.1:9")
    ):
        DockerSandbox(owner=OWNER)
