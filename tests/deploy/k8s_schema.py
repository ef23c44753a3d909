"""Kubernetes objects checked against the API's schema, as the models of
the Kubernetes Python client (Debian's python3-kubernetes) carry it:
every model class is generated from the API's OpenAPI document, with the
JSON name and the type of each of its fields. check() walks an object
(a dict loaded from YAML) down those types and reports every field the
API does not have, every value of the wrong type, and, through the
client's own deserialisation, every required field that is missing.
"""

import json
import re

try:
    import kubernetes.client as k8s
except ImportError:  # the caller says what to install
    k8s = None

# The kinds deploy/k8s uses, by apiVersion and kind.
MODELS = {
    ("v1", "Service"): "V1Service",
    ("v1", "Secret"): "V1Secret",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
}


def available():
    return k8s is not None


def version():
    return getattr(k8s, "__version__", "?")


def _check_value(value, typ, path, errors):
    if value is None:
        return
    m = re.fullmatch(r"list\[(.+)\]", typ)
    if m:
        if not isinstance(value, list):
            errors.append("%s: a list expected, not %r" % (path, value))
            return
        for i, v in enumerate(value):
            _check_value(v, m.group(1), "%s[%d]" % (path, i), errors)
        return
    m = re.fullmatch(r"dict\(str, (.+)\)", typ)
    if m:
        if not isinstance(value, dict):
            errors.append("%s: a map expected, not %r" % (path, value))
            return
        for k, v in value.items():
            if not isinstance(k, str):
                errors.append("%s: key %r is not a string" % (path, k))
            _check_value(v, m.group(1), "%s.%s" % (path, k), errors)
        return
    if typ == "str":
        if not isinstance(value, str):
            errors.append("%s: a string expected, not %r" % (path, value))
    elif typ == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append("%s: an integer expected, not %r" % (path, value))
    elif typ == "bool":
        if not isinstance(value, bool):
            errors.append("%s: true or false expected, not %r" % (path, value))
    elif typ in ("object", "datetime", "date", "float"):
        pass  # int-or-string, quantities, free-form: any scalar
    else:
        cls = getattr(k8s, typ, None)
        if cls is None:
            errors.append("%s: unknown type %s in the client" % (path, typ))
        elif not isinstance(value, dict):
            errors.append("%s: an object (%s) expected, not %r" % (path, typ, value))
        else:
            _check_object(value, cls, path, errors)


def _check_object(obj, cls, path, errors):
    by_json = {j: attr for attr, j in cls.attribute_map.items()}
    for key, value in obj.items():
        attr = by_json.get(key)
        if attr is None:
            errors.append("%s: no field %r in %s" % (path, key, cls.__name__))
            continue
        _check_value(value, cls.openapi_types[attr], "%s.%s" % (path, key), errors)


class _Response:
    def __init__(self, obj):
        self.data = json.dumps(obj)


def check(obj, where):
    """The schema errors of one object (a list of strings)."""
    errors = []
    key = (obj.get("apiVersion"), obj.get("kind"))
    name = MODELS.get(key)
    if name is None:
        return ["%s: no schema here for %s %s" % (where, key[0], key[1])]
    cls = getattr(k8s, name)
    _check_object(obj, cls, where, errors)
    if not errors:
        # Required fields: the models refuse to be built without them.
        try:
            k8s.ApiClient().deserialize(_Response(obj), name)
        except (ValueError, TypeError) as e:
            errors.append("%s: %s" % (where, e))
    return errors
