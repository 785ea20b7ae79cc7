"""The domain is pure: importing it loads no database, HTTP or process machinery."""

import json
import subprocess
import sys

import pytest

PURE = (
    "service.incidents.domain",
    "service.incidents.catalogue",
    "service.incidents.content",
    "service.incidents.blocs",
)
IO_PACKAGES = ("asyncpg", "litestar", "httpx", "uvicorn", "alembic", "sqlalchemy", "psycopg")
IO_MODULES = (
    "service.http",
    "service.log.store",
    "service.log.database",
    "service.projections",
    "service.subscribers",
    "service.ops",
)


def loaded_by(module: str) -> list[str]:
    """Every module in sys.modules after a fresh interpreter imports `module` alone."""
    script = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(ran.stdout)
    return loaded


def _is_io(name: str) -> bool:
    top = name.split(".")[0]
    return top in IO_PACKAGES or any(
        name == prefix or name.startswith(f"{prefix}.") for prefix in IO_MODULES
    )


@pytest.mark.parametrize("module", PURE)
def test_the_domain_imports_no_io(module: str) -> None:
    assert [name for name in loaded_by(module) if _is_io(name)] == []
