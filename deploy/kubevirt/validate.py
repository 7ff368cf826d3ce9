#!/usr/bin/env python3
"""Checks the kubevirt.io objects of a YAML file against KubeVirt's OpenAPI schema, strictly: a field the schema
does not name is an error, as the API server's strict field validation would make it.

Usage: deploy/kubevirt/validate.py SWAGGER_JSON [YAML]  (YAML defaults to deploy/kubevirt/oxvpn-router.yaml)
SWAGGER_JSON is api/openapi-spec/swagger.json of KubeVirt's repository at the release the cluster runs.
Needs python3-yaml and python3-jsonschema. Objects of other API groups (the NetworkAttachmentDefinition) are
listed as not checked."""
import json, os, sys
import jsonschema, yaml

def strict(node):
    """additionalProperties: false on every object schema that lists its properties."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for v in node.values():
            strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)

def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    swagger = json.load(open(sys.argv[1]))
    path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "oxvpn-router.yaml")
    defs = swagger["definitions"]
    strict(defs)
    # The top-level metadata is Kubernetes' ObjectMeta, only referenced by the swagger: take it as it is.
    defs["k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta"].pop("additionalProperties", None)
    failed = 0
    for doc in yaml.safe_load_all(open(path)):
        if not doc:
            continue
        api, kind, name = doc.get("apiVersion", ""), doc.get("kind", ""), doc.get("metadata", {}).get("name")
        if not api.startswith("kubevirt.io/"):
            print(f"validate: {kind} {name}: {api} not checked (no schema here)")
            continue
        schema = {"$ref": f"#/definitions/{api.split('/')[1]}.{kind}", "definitions": defs}
        errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
        for e in errors:
            print(f"validate: {kind} {name}: {'.'.join(map(str, e.path))}: {e.message}")
        print(f"validate: {kind} {name}: {'ok' if not errors else f'{len(errors)} errors'}")
        failed += bool(errors)
    sys.exit(1 if failed else 0)

main()
