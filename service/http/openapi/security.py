"""Who may call each operation, in the OpenAPI document: the scope auth enforces.

Every operation states its `security`, so a generator knows where the key goes.
OpenAPI 3.1 lets a bearer requirement name the roles it needs: here the key's
scope. A `read` operation also lists the empty requirement, since a key is needed
only under LEGATION_PUBLIC_READS=false.
"""

from typing import Final

from litestar.openapi.spec import Reference, SecurityRequirement, SecurityScheme

from service.http.route_meta import Scope

SCHEME: Final = "bearerAuth"
SCHEMES: Final[dict[str, SecurityScheme | Reference]] = {
    SCHEME: SecurityScheme(
        type="http",
        scheme="bearer",
        description="An API key made with `legation keys create --name N --scopes S`, sent "
        "as `Authorization: Bearer <key>`. Each operation names the scope it needs (`admin` "
        "may do everything); a missing or revoked key is a 401, one without the scope a 403.",
    )
}


def requirement(scope: Scope) -> list[SecurityRequirement]:
    """The security of an operation that needs `scope`."""
    if scope == "public":
        return []
    needed: SecurityRequirement = {SCHEME: [scope]}
    return [{}, needed] if scope == "read" else [needed]
