"""Certificates for a lab run, made with `ovs-pki` as an operator makes them
(docs/operator/security.md): one PKI per run directory, its two CAs (`switchca` signs the hosts'
certificates, `controllerca` the controller's), and a certificate per host whose CN is the host's
system-id (`req+sign -u`). Another Pki is another CA: its certificates are foreign to the first.

    pki = Pki(workdir / "pki")
    key, cert = pki.host("h1")                       # CN "h1", signed by switchca
    ctl = pki.controller()                           # CN "controller", signed by controllerca
    pki.switch_ca, pki.controller_ca                 # the CA certificates each side trusts
    pki.server("etcd", "127.0.0.1")                  # a server's, by controllerca, for its IP (openssl:
                                                     # ovs-pki names no address; etcd's clients check it)
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import NamedTuple

from lab.procs import LabError


class Cert(NamedTuple):
    private_key: Path
    certificate: Path


class HostTls(NamedTuple):
    """What a host gives `ovs-vsctl set-ssl`: its key, its certificate, the controller's CA."""

    private_key: Path
    certificate: Path
    ca_certificate: Path


class Pki:
    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_dir = self.dir / "ca"
        if not (self.ca_dir / "switchca" / "cacert.pem").exists():
            self._pki("init")

    @property
    def switch_ca(self) -> Path:
        """What the controller trusts: the CA of the hosts' certificates ([tls] ca_certificate)."""
        return self.ca_dir / "switchca" / "cacert.pem"

    @property
    def controller_ca(self) -> Path:
        """What the hosts trust: the CA of the controller's certificate (`ovs-vsctl set-ssl ... CACERT`)."""
        return self.ca_dir / "controllerca" / "cacert.pem"

    def _pki(self, *args: str) -> None:
        # ovs-pki writes NAME-*.pem in its working directory and takes NAME for the CN: run it there.
        r = subprocess.run(["ovs-pki", f"--dir={self.ca_dir}", f"--log={self.dir / 'ovs-pki.log'}", *args],
                           cwd=self.dir, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise LabError(f"ovs-pki {' '.join(args)} failed: {r.stderr.strip() or r.stdout.strip()}")

    def _cert(self, name: str, kind: str) -> Cert:
        cert = Cert(self.dir / f"{name}-privkey.pem", self.dir / f"{name}-cert.pem")
        if not cert.certificate.exists():
            self._pki("--unique", "req+sign", name, kind)
        return cert

    def host(self, name: str) -> Cert:
        """A host's key and certificate, CN = name (its system-id)."""
        return self._cert(name, "switch")

    def controller(self, name: str = "controller") -> Cert:
        return self._cert(name, "controller")

    def server(self, name: str, ip: str) -> Cert:
        """A server certificate for `ip` (subjectAltName), signed by controllerca."""
        cert = Cert(self.dir / f"{name}-privkey.pem", self.dir / f"{name}-cert.pem")
        if cert.certificate.exists():
            return cert
        ca = self.ca_dir / "controllerca"
        ext = self.dir / f"{name}.ext"
        ext.write_text(f"subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth,clientAuth\n")
        for args in (["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(cert.private_key),
                      "-subj", f"/CN={name}", "-out", str(self.dir / f"{name}-req.pem")],
                     ["x509", "-req", "-in", str(self.dir / f"{name}-req.pem"), "-CA", str(ca / "cacert.pem"),
                      "-CAkey", str(ca / "private" / "cakey.pem"), "-CAcreateserial", "-days", "3650",
                      "-extfile", str(ext), "-out", str(cert.certificate)]):
            r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise LabError(f"openssl {args[0]} for {name} failed: {r.stderr.strip()}")
        return cert

    def host_tls(self, name: str) -> HostTls:
        """Host `name` joining with TLS: its certificate (CN = name) and the controller's CA."""
        key, cert = self.host(name)
        return HostTls(key, cert, self.controller_ca)
