"""The official Llama 4 chat template rendered with Jinja2 the way transformers renders it
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, tojson = json.dumps(ensure_ascii=False),
raise_exception). Shared by the chat template and server prompt-token tests."""
import json
import sys

try:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    print("FAIL: python3-jinja2 is not installed (make deps)")
    sys.exit(1)


def render_jinja(case, llama4):
    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    template = env.from_string((llama4 / "chat_template.jinja").read_text())
    kwargs = dict(messages=case["messages"], bos_token="<|begin_of_text|>",
                  add_generation_prompt=case.get("add_generation_prompt", True))
    if "tools" in case:
        kwargs["tools"] = case["tools"]
    if "tools_in_user_message" in case:
        kwargs["tools_in_user_message"] = case["tools_in_user_message"]
    return template.render(**kwargs)
