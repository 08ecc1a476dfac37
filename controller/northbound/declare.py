"""The overlay as one document over REST (controller/model/overlay_doc.py; docs/user/gitops.md):

    POST /v1/apply[?prune=true][&dry_run=true]   make the tenants and host records the document's, at once
    GET  /v1/export                              today's tenants and host records as a document

An apply is one request, checked whole before anything is written (every tenant's fields, the
document's own clashes, clashes with the tenants it keeps, every admission and port rule), then
one write of the store (one SQLite transaction, one etcd transaction) and one revision: all of
it, or nothing. Its answer is the plan (what was created, changed, deleted, left alone: tenants,
then `hosts` and `ports`) and the revision; with dry_run the plan alone (`overlayctl diff`).
Export writes the operator's decisions and the port rules the store has; hosts admitted by
`[overlay] admitted_hosts` are the config's, not the store's, and are left out. A refusal names
the field ("path") so overlayctl can name the file's line.
"""

from __future__ import annotations

from typing import Any

from webob import Request

from controller.model import overlay_doc
from controller.model.revisions import REVISION_HEADER

MAX_DOCUMENT = 4 * 1024 * 1024  # a document of thousands of tenants; a tenant alone is held to 64 KiB
ROUTES = [
    ("POST", r"^/v1/apply$", "apply"),
    ("GET", r"^/v1/export$", "export"),
]
FLAGS = {"true": True, "1": True, "false": False, "0": False}


class BadFlag(ValueError):
    pass


def flag(req: Request, name: str) -> bool:
    try:
        text = req.GET.get(name, "false")
    except UnicodeDecodeError:
        raise BadFlag("the query string is not valid UTF-8") from None
    if text.lower() not in FLAGS:
        raise BadFlag(f"'{name}' must be true or false")
    return FLAGS[text.lower()]


class DeclareView:
    """Handlers mixed into rest.Api (which routes, authenticates, parses bodies and counts them)."""

    b: Any  # rest.Backend
    tenants: Any  # northbound.tenants.Tenants

    def apply(self, req: Request) -> tuple[int, Any, dict]:
        try:
            prune, dry_run = flag(req, "prune"), flag(req, "dry_run")
        except BadFlag as e:
            return 400, {"error": str(e)}, {}
        desired = overlay_doc.read(self._body(req, limit=MAX_DOCUMENT))  # type: ignore[attr-defined]

        def run() -> tuple[overlay_doc.Plan, int]:
            return self.tenants.apply(desired, prune, dry_run), self.tenants.revision()
        plan, revision = self.b.call(run)
        doc = {"revision": revision, "applied": plan.changes and not dry_run, "dry_run": dry_run, "prune": prune,
               **plan.to_json()}
        return 200, doc, {REVISION_HEADER: str(revision)}

    def export(self, req: Request) -> tuple[int, Any, dict]:
        def run() -> tuple[dict, int]:
            r, policy = self.b.core.read, self.b.core.policy
            rules = [rule for ports in policy.rules.values() for rule in ports.values()]
            return overlay_doc.to_doc(dict(r.tenants), policy.decisions, rules), r.revision
        doc, revision = self.b.call(run)
        return 200, doc, {REVISION_HEADER: str(revision)}
