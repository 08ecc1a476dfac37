"""The os-ken app (apps/overlay.py), shipped so that `overlay-controller` can load it as apps.overlay."""
