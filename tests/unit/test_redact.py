"""The one URL redaction (infra/redact.py): no password survives, whatever the URL's shape."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slatrail.infra.redact import Scrubber, redact_url
from slatrail.infra.store import StoreURLError, parse_store_url

USERS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.-0123456789", min_size=1, max_size=12)
# any printable text, the URL delimiters in particular
PASSWORDS = st.text(
    alphabet=st.sampled_from([*"abcXYZ0189/#?@:%&=+ !$'()*,;[]~", "é", "密"]),
    min_size=1,
    max_size=24,
)


@given(USERS, PASSWORDS)
def test_the_password_of_a_postgresql_url_is_always_hidden(user: str, password: str) -> None:
    url = f"postgresql://{user}:{password}@db.example:5432/slatrail"
    assert redact_url(url) == f"postgresql://{user}:***@db.example:5432/slatrail"


@given(USERS, PASSWORDS)
def test_any_url_error_names_the_url_without_its_password(user: str, password: str) -> None:
    marked = f"Zq{password}Zq"
    url = f"postgresql://{user}:{marked}@db.example:5432/slatrail"
    try:
        location = parse_store_url(url)
    except StoreURLError as error:
        assert marked not in str(error)
        assert "Zq" not in str(error)
    else:
        assert location.host == "db.example"
        assert location.dbname == "slatrail"


@given(USERS, PASSWORDS, st.text(max_size=40))
def test_the_scrubber_removes_the_password_from_any_text(
    user: str, password: str, around: str
) -> None:
    marked = f"Zq{password}Zq"
    url = f"postgresql://{user}:{marked}@db.example:5432/slatrail"
    text = f"{around}{url} {around}{marked}{around}"
    assert marked not in Scrubber(urls=[url])(text)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:///a@b:c.db", "sqlite:///a@b:c.db"),
        ("sqlite:////srv/x.db", "sqlite:////srv/x.db"),
        ("postgresql://ops@h/db", "postgresql://ops@h/db"),
        (
            "postgresql://h/db?sslmode=require&password=pw",
            "postgresql://h/db?sslmode=require&password=***",
        ),
        ("postgresql://ops:pw@h/db?sslpassword=k", "postgresql://ops:***@h/db?sslpassword=***"),
        ("mysql://ops:pw@h/db", "mysql://ops:***@h/db"),
        ("ops:pw@h/db", "ops:***@h/db"),
        ("postgresql://ops:p@w@h/db", "postgresql://ops:***@h/db"),
        ("postgresql://ops:password=@h:5/db", "postgresql://ops:***@h:5/db"),
    ],
)
def test_redaction_examples(url: str, shown: str) -> None:
    assert redact_url(url) == shown
