"""Rotating the self-signed root of a CA directory without a failed request, in three phases.

Every proxy must trust a certificate's root before it meets one signed by it, and must hold a
certificate signed by the new root before the old root is dropped. So:

1. `add`: make the new root (its key kept aside, 0600) and append it to `root-cert.pem`, the
   trust bundle. Signing continues with the old root. The agents pick the bundle up and push it
   to Envoy as `ROOTCA` (in Kubernetes, the root ConfigMap reaches pods only after the kubelet's
   sync, a minute or two). Wait until every proxy has it.
2. `activate`: sign with the new root (`ca-key.pem`, `ca-cert.pem`, `cert-chain.pem` replaced);
   the bundle still holds both roots, so certificates of either root are trusted. Wait until
   every workload has renewed (half the workload lifetime; at most the whole lifetime).
3. `finish`: drop the old root from the bundle.

The state between phases is `rotation.json` in the directory, so each phase is its own command
(`mizzen ca rotate-root --phase ...`) and a phase run out of order is refused with what to do.
A running CA reloads the directory and follows (it keeps its last good issuer while files are
half replaced).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.x509.oid import NameOID

from control.identity.files import FileReadError, read_bounded, write_atomic
from control.identity.keys import KeySpec, PrivateKey, generate_key, load_private_key
from control.identity.pem import certificates_pem, fingerprint, is_self_signed, load_certificates
from control.plane.ca.material import CaMaterial, load_issuer, self_signed_root
from control.plane.ca.store import FileCaStore, locked

STATE_FILE: Final = "rotation.json"
NEXT_KEY: Final = "next-ca-key.pem"
NEXT_CERT: Final = "next-ca-cert.pem"
Phase = Literal["add", "activate", "finish"]
PHASES: Final = ("add", "activate", "finish")


class RotationError(RuntimeError):
    """A phase that cannot run now; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class RotationState:
    phase: Literal["added", "active"]
    old_root: str  # fingerprints
    new_root: str
    started: str

    def describe(self) -> str:
        if self.phase == "added":
            return (
                f"new root {self.new_root[:16]} added to the trust bundle ({self.started}); "
                "once every proxy has it, run --phase activate"
            )
        return (
            f"signing with the new root {self.new_root[:16]}; once every workload has renewed "
            f"its certificate, run --phase finish to drop the old root {self.old_root[:16]}"
        )


def read_state(directory: Path) -> RotationState | None:
    path = directory / STATE_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(read_bounded(path, 4096))
        return RotationState(
            phase=data["phase"],
            old_root=str(data["old_root"]),
            new_root=str(data["new_root"]),
            started=str(data["started"]),
        )
    except (FileReadError, ValueError, KeyError, TypeError) as error:
        raise RotationError(f"{path}: unreadable rotation state ({error})") from None


def _write_state(directory: Path, state: RotationState | None) -> None:
    path = directory / STATE_FILE
    if state is None:
        path.unlink(missing_ok=True)
        return
    body = {
        "phase": state.phase,
        "old_root": state.old_root,
        "new_root": state.new_root,
        "started": state.started,
    }
    write_atomic(path, json.dumps(body, indent=2).encode() + b"\n", 0o600)


def _spec_of(key: PrivateKey) -> KeySpec:
    if hasattr(key, "curve"):
        return KeySpec("ecdsa", curve="P384" if key.curve.name == "secp384r1" else "P256")
    return KeySpec("rsa", rsa_bits=max(key.key_size, 2048))


def _trust_domain(root: x509.Certificate) -> str:
    names = root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(names[0].value) if names else "cluster.local"


def _material(store: FileCaStore) -> CaMaterial:
    material = store.load()
    if material is None:
        raise RotationError(f"{store.directory}: no CA to rotate (start the control plane first)")
    issuer = load_issuer(material)
    if issuer.chain != (issuer.certificate,) or not is_self_signed(issuer.certificate):
        raise RotationError(
            f"{store.directory}: signs as an intermediate; rotate it where its root lives"
        )
    return material


def rotate(
    directory: Path, phase: Phase, now: datetime, key_spec: KeySpec | None = None
) -> RotationState | None:
    """Run one phase; returns the state after it (None once finished)."""
    store = FileCaStore(directory)
    if not directory.is_dir():
        raise RotationError(f"{directory}: not a directory")
    with locked(directory):
        state = read_state(directory)
        steps: dict[str, Callable[[], RotationState | None]] = {
            "add": lambda: _add(store, state, now, key_spec),
            "activate": lambda: _activate(store, state),
            "finish": lambda: _finish(store, state),
        }
        return steps[phase]()


def _add(
    store: FileCaStore, state: RotationState | None, now: datetime, spec: KeySpec | None
) -> RotationState:
    if state is not None:
        raise RotationError(f"a rotation is under way: {state.describe()}")
    material = _material(store)
    issuer = load_issuer(material)
    key = generate_key(spec or _spec_of(issuer.key))
    fresh = self_signed_root(key, now, _trust_domain(issuer.certificate))
    new_root = load_certificates(fresh.ca_cert)[0]
    directory = store.directory
    write_atomic(directory / NEXT_KEY, fresh.ca_key, 0o600)
    write_atomic(directory / NEXT_CERT, fresh.ca_cert, 0o644)
    bundle = [*issuer.roots, new_root]
    store.write(
        CaMaterial(material.ca_key, material.ca_cert, material.cert_chain, certificates_pem(bundle))
    )
    new_state = RotationState(
        "added", fingerprint(issuer.certificate), fingerprint(new_root), now.isoformat()
    )
    _write_state(directory, new_state)
    return new_state


def _activate(store: FileCaStore, state: RotationState | None) -> RotationState:
    if state is None or state.phase != "added":
        raise RotationError(_out_of_order("activate", state))
    directory = store.directory
    try:
        key_pem = read_bounded(directory / NEXT_KEY, 64 * 1024)
        cert_pem = read_bounded(directory / NEXT_CERT, 64 * 1024)
        load_private_key(key_pem)
    except (FileReadError, ValueError) as error:
        raise RotationError(f"the new root cannot be read: {error}") from None
    material = _material(store)
    activated = CaMaterial(key_pem, cert_pem, cert_pem, material.root_cert)
    load_issuer(activated)  # the new root must be in the bundle and match its key
    store.write(activated)
    (directory / NEXT_KEY).unlink(missing_ok=True)
    (directory / NEXT_CERT).unlink(missing_ok=True)
    new_state = RotationState("active", state.old_root, state.new_root, state.started)
    _write_state(directory, new_state)
    return new_state


def _finish(store: FileCaStore, state: RotationState | None) -> None:
    if state is None or state.phase != "active":
        raise RotationError(_out_of_order("finish", state))
    material = _material(store)
    roots = [r for r in load_certificates(material.root_cert) if fingerprint(r) != state.old_root]
    finished = CaMaterial(
        material.ca_key, material.ca_cert, material.cert_chain, certificates_pem(roots)
    )
    load_issuer(finished)
    store.write(finished)
    _write_state(store.directory, None)


def _out_of_order(phase: str, state: RotationState | None) -> str:
    if state is None:
        return f"no rotation under way: --phase {phase} comes after --phase add"
    return f"--phase {phase} is not next: {state.describe()}"
