"""N Cedar policies like an operator's (the same family as benches/stages.rs), plus the permit
that decides the benchmark's call: `gen_policies.py 100 > policies.cedar`."""

import sys


def main() -> None:
    n = int(sys.argv[1])
    out = []
    for i in range(n):
        k = i % 4
        if k == 0:
            out.append(
                f'@id("p{i}")\npermit (principal in Portcullis::Role::"role{i}", '
                f'action == Portcullis::Action::"call_tool", resource)\nwhen {{ resource.upstream == "up{i}" }};'
            )
        elif k == 1:
            out.append(
                f'@id("p{i}")\nforbid (principal, action == Portcullis::Action::"call_tool", '
                f'resource == Portcullis::Tool::"up{i}__write")\n'
                f'when {{ context.args has path && context.args.path like "/etc/*" }};'
            )
        elif k == 2:
            out.append(
                f'@id("p{i}")\npermit (principal in Portcullis::Role::"role{i}", '
                f'action == Portcullis::Action::"read_resource", resource);'
            )
        else:
            out.append(
                f'@id("p{i}")\nforbid (principal, action == Portcullis::Action::"call_tool", resource)\n'
                f'when {{ resource.destructive && context.hour < 6 && principal in Portcullis::Role::"intern{i}" }};'
            )
    out.append(
        '@id("dev-read-only")\npermit (principal in Portcullis::Role::"dev", '
        'action == Portcullis::Action::"call_tool", resource)\nwhen { resource.read_only };'
    )
    out.append(
        '@id("dev-list")\npermit (principal in Portcullis::Role::"dev", '
        'action == Portcullis::Action::"list_tools", resource);'
    )
    print("\n\n".join(out))


if __name__ == "__main__":
    main()
