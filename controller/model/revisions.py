"""The revision of the tenants: every write of the store makes one, higher than any before (one
tenant written, or a whole document applied); the API answers each write with it in this header,
and GET /v1/status?revision= says when every switch holds it (docs/user/gitops.md)."""

REVISION_HEADER = "X-Overlay-Revision"
