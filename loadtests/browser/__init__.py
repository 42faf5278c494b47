"""The browser load generator: a phase's users in Chromium pages (README.md here;
run as ``python -m loadtests.browser`` with $SSEVSWS_PHASE)."""
