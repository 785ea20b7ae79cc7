"""OpenAPI links: which response supplies the id (and ETag) that other operations take.

Clients read them as documentation; schemathesis's stateful phase follows them
to reach real incidents and subscriptions instead of random ids.
"""

from litestar.openapi.spec import Link, OpenAPI, OpenAPIResponse, Operation

INCIDENT = "/v1/incidents/{incident_id}"
SUBSCRIPTION = "/v1/subscriptions/{subscription_id}"
_ID = "$response.body#/id"
_INCIDENT_NEXT = (
    ("get", INCIDENT),
    ("get", f"{INCIDENT}/events"),
    ("post", f"{INCIDENT}/corrections"),
    ("post", f"{INCIDENT}/retraction"),
    ("post", f"{INCIDENT}/sources"),
)
_SUBSCRIPTION_NEXT = (
    ("get", SUBSCRIPTION),
    ("patch", SUBSCRIPTION),
    ("delete", SUBSCRIPTION),
    ("get", f"{SUBSCRIPTION}/deliveries"),
)
# (path, method, status) of a response -> the operations its id leads to.
LINKS = {
    ("/v1/incidents", "post", "201"): _INCIDENT_NEXT,
    (f"{INCIDENT}/corrections", "post", "200"): _INCIDENT_NEXT,
    (f"{INCIDENT}/sources", "post", "200"): _INCIDENT_NEXT,
    ("/v1/subscriptions", "post", "201"): _SUBSCRIPTION_NEXT,
    (SUBSCRIPTION, "patch", "200"): _SUBSCRIPTION_NEXT,
}


def add(document: OpenAPI) -> None:
    """Write LINKS into the responses of `document`."""
    for (path, method, status), targets in LINKS.items():
        response = (_operation(document, path, method).responses or {})[status]
        assert isinstance(response, OpenAPIResponse)
        response.links = {
            _operation(document, target, verb).operation_id or target: _link(document, target, verb)
            for verb, target in targets
        }


def _link(document: OpenAPI, path: str, method: str) -> Link:
    operation = _operation(document, path, method)
    parameter = path.split("{")[1].rstrip("}/").split("}")[0]
    parameters = {parameter: _ID}
    names = {getattr(item, "name", None) for item in operation.parameters or ()}
    if "If-Match" in names:
        parameters["header.If-Match"] = "$response.header.ETag"
    return Link(operation_id=operation.operation_id, parameters=parameters)


def _operation(document: OpenAPI, path: str, method: str) -> Operation:
    operation = getattr((document.paths or {})[path], method)
    assert isinstance(operation, Operation), (method, path)
    return operation
