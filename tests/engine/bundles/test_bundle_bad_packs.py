"""Bad packs against the real definition models: each asserts codes, sources and paths."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from bundle_helpers import located, problems_of, zip_bytes

from engine.bundles import load_bundle

Tree = Callable[[Mapping[str, str | bytes]], Path]
MANIFEST = "key: pack\nname: Pack\nversion: 0.1.0\nengine: '>=0.1,<1.0'\n"
CUSTOMER = """\
key: customer
label: Customer
fields:
  - key: name
    type: text
  - key: visits
    type: number
"""


def pack(**files: str) -> dict[str, str]:
    return {"bundle.yaml": MANIFEST, "forms/customer.yaml": CUSTOMER, **files}


def test_malformed_yaml(tree: Tree) -> None:
    problems = problems_of(lambda: load_bundle(tree(pack(**{"forms/ticket.yaml": "key: [\n"}))))
    assert located(problems) == {("bundle.yaml-syntax", "forms/ticket.yaml", "")}
    assert "line 2" in problems[0].message


def test_malformed_json(tree: Tree) -> None:
    problems = problems_of(lambda: load_bundle(tree(pack(**{"forms/ticket.json": '{"key": }'}))))
    assert located(problems) == {("bundle.json-syntax", "forms/ticket.json", "")}


def test_unknown_key_with_hint(tree: Tree) -> None:
    form = CUSTOMER.replace("    type: text\n", "    type: text\n    max_lenght: 3\n")
    problems = problems_of(lambda: load_bundle(tree(pack(**{"forms/customer.yaml": form}))))
    assert located(problems) == {
        ("bundle.unknown-key", "forms/customer.yaml", "/fields/0/max_lenght")
    }
    assert "max_length" in (problems[0].hint or "")


def test_duplicate_yaml_key(tree: Tree) -> None:
    form = CUSTOMER.replace("label: Customer\n", "label: Customer\nlabel: Client\n")
    problems = problems_of(lambda: load_bundle(tree(pack(**{"forms/customer.yaml": form}))))
    assert located(problems) == {("bundle.duplicate-key", "forms/customer.yaml", "/label")}


def test_duplicate_json_key(tree: Tree) -> None:
    form = (
        '{"key": "ticket", "label": "T", '
        '"fields": [{"key": "a", "type": "text", "type": "number"}]}'
    )
    problems = problems_of(lambda: load_bundle(tree(pack(**{"forms/ticket.json": form}))))
    assert located(problems) == {("bundle.duplicate-key", "forms/ticket.json", "/fields/0/type")}


def test_field_type_that_does_not_exist(tree: Tree) -> None:
    form = CUSTOMER.replace("type: number", "type: nubmer")
    problems = problems_of(lambda: load_bundle(tree(pack(**{"forms/customer.yaml": form}))))
    assert located(problems) == {("bundle.unknown-type", "forms/customer.yaml", "/fields/1/type")}
    assert "'number'" in (problems[0].hint or "")


def test_reference_to_unknown_field_via_the_form_compiler(tree: Tree) -> None:
    form = CUSTOMER + "title_field: nmae\n"
    problems = problems_of(lambda: load_bundle(tree(pack(**{"forms/customer.yaml": form}))))
    assert located(problems) == {("form.unknown-field", "forms/customer.yaml", "/title_field")}


def test_bad_expression_points_at_the_column(tree: Tree) -> None:
    form = (
        CUSTOMER
        + "  - key: score\n    type: formula\n    expr: visits * * 2\n    result_type: number\n"
    )
    problems = problems_of(lambda: load_bundle(tree(pack(**{"forms/customer.yaml": form}))))
    assert [(p.source, p.path) for p in problems] == [("forms/customer.yaml", "/fields/2/expr")]
    assert problems[0].code.startswith(("form.", "expr."))
    assert "column 10" in problems[0].message


def test_relation_to_unknown_form_and_other_kinds_references(tree: Tree) -> None:
    files = pack(
        **{
            "forms/ticket.yaml": "key: ticket\nlabel: T\n"
            "fields:\n  - {key: c, type: relation, form: custmer}\n",
            "dashboards/main.yaml": "key: main\nlabel: M\n"
            "widgets:\n  - {key: w, report: nope, x: 0, y: 0, w: 6, h: 4}\n",
            "menus/main.yaml": "key: main\nlabel: M\n"
            "items:\n  - {key: a, label: A, form: tickets}\n",
            "roles/agent.yaml": "key: agent\nlabel: A\n"
            "permissions:\n  - {form: customer}\n  - {form: device}\n",
        }
    )
    problems = problems_of(lambda: load_bundle(tree(files)))
    assert {(p.source, p.path) for p in problems} == {
        ("forms/ticket.yaml", "/fields/0/form"),
        ("dashboards/main.yaml", "/widgets/0/report"),
        ("menus/main.yaml", "/items/0/form"),
        ("roles/agent.yaml", "/permissions/1/form"),
    }
    assert {p.code for p in problems if p.source != "forms/ticket.yaml"} == {
        "bundle.unknown-reference"
    }


def test_alias_bomb(tree: Tree) -> None:
    lines = ["key: customer", "label: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        lines.append(
            f"l{level}: &a{level} [{', '.join(['*a' if level == 1 else f'*a{level - 1}'] * 10)}]"
        )
    bomb = "\n".join(lines) + "\n"
    problems = problems_of(lambda: load_bundle(tree(pack(**{"forms/customer.yaml": bomb}))))
    assert located(problems) == {("bundle.yaml-alias", "forms/customer.yaml", "")}


def test_zip_with_parent_and_absolute_paths_and_symlink() -> None:
    import io
    import stat
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in pack().items():
            archive.writestr(name, content)
        for name in ("../../etc/cron.d/x", "/tmp/x.yaml"):
            info = zipfile.ZipInfo("placeholder")
            info.filename = name
            archive.writestr(info, "x")
        link = zipfile.ZipInfo("forms/link.yaml")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    problems = problems_of(lambda: load_bundle(buffer.getvalue()))
    assert located(problems) == {
        ("bundle.path-traversal", "../../etc/cron.d/x", ""),
        ("bundle.absolute-path", "/tmp/x.yaml", ""),
        ("bundle.symlink", "forms/link.yaml", ""),
    }


def test_zip_with_oversized_member() -> None:
    data = zip_bytes(pack(**{"data/huge.csv": "0" * (5 * 1024 * 1024)}))
    problems = problems_of(lambda: load_bundle(data))
    assert located(problems) == {("bundle.file-too-large", "data/huge.csv", "")}


def test_bundle_requiring_a_newer_engine(tree: Tree) -> None:
    files = pack(**{"bundle.yaml": MANIFEST.replace(">=0.1,<1.0", ">=9.0")})
    problems = problems_of(lambda: load_bundle(tree(files)))
    assert located(problems) == {("bundle.engine-version", "bundle.yaml", "/engine")}


def test_several_errors_in_several_files_are_reported_together(tree: Tree) -> None:
    files = pack(
        **{
            "forms/customer.yaml": CUSTOMER.replace("type: number", "type: nubmer"),
            "forms/ticket.yaml": "key: ticket\nlabel: T\n"
            "fields:\n  - {key: a, type: text}\ntitle_field: b\n",
            "forms/device.json": '{"key": "device", "label": "D", "fields": [], "colour": 1}',
            "flows/intake.yaml": "key: intake\nlabel: I\n"
            "trigger: {type: record_created, form: tickt}\nnodes:\n  - {key: s, type: start}\n"
            "  - {key: e, type: end}\nedges:\n  - {from: s, to: e}\n",
            "reports/r.yaml": "key: r\nlabel: R\ndataset: {form: ticket}\nlimit: 0\n",
            "menus/m.yaml": "key: wrong\nlabel: M\nitems: []\n",
        }
    )
    problems = problems_of(lambda: load_bundle(tree(files)))
    assert located(problems) == {
        ("bundle.unknown-type", "forms/customer.yaml", "/fields/1/type"),
        ("form.unknown-field", "forms/ticket.yaml", "/title_field"),
        ("bundle.unknown-key", "forms/device.json", "/colour"),
        ("bundle.unknown-reference", "flows/intake.yaml", "/trigger/form"),
        ("bundle.invalid-value", "reports/r.yaml", "/limit"),
        ("bundle.key-mismatch", "menus/m.yaml", "/key"),
    }


def test_subflow_reference_and_free_json_is_not_a_reference(tree: Tree) -> None:
    flow = (
        "key: intake\nlabel: I\ntrigger: {type: manual}\nnodes:\n"
        "  - {key: s, type: start}\n  - {key: sub, type: subflow, flow: escalate}\n"
        "  - key: hook\n    type: action\n    actions:\n"
        "      - {type: webhook, url: 'https://example.com', payload: {form: anything}}\n"
        "  - {key: e, type: end}\nedges:\n"
        "  - {from: s, to: sub}\n  - {from: sub, to: hook}\n  - {from: hook, to: e}\n"
    )
    problems = problems_of(lambda: load_bundle(tree(pack(**{"flows/intake.yaml": flow}))))
    assert located(problems) == {("bundle.unknown-reference", "flows/intake.yaml", "/nodes/1/flow")}
