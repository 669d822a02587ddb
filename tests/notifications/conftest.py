import pytest

from notifications.message_templates import register

from .helpers import GREETING


@pytest.fixture(autouse=True)
def _greeting_template() -> None:
    register(GREETING)
