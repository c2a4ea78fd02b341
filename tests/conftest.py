"""Shared fixtures. Each service fixture starts a real server on a free loopback port."""

pytest_plugins = [
    "tests.fixtures.ports",
    "tests.fixtures.gpg",
    "tests.fixtures.postgres",
    "tests.fixtures.gitrepo",
    "tests.fixtures.kubesim",
    "tests.fixtures.aws",
    "tests.fixtures.gcp",
    "tests.fixtures.vault",
]
