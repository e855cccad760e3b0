"""The ``taskloom`` command line: submit and follow workflows, mint dev tokens, run services
and the whole development stack."""
