"""TNEF (``winmail.dat``) read into children: the plain, HTML and RTF bodies and every attachment."""

from __future__ import annotations

from validators.mail import names
from validators.mail.harvest import Harvest
from validators.mail.tnef import TnefError, read_tnef


def read_tnef_parts(data: bytes, harvest: Harvest) -> None:
    try:
        tnef = read_tnef(data, harvest.ctx.check_time)
    except TnefError as exc:
        harvest.malformed("the TNEF (winmail.dat) stream could not be read", evidence=str(exc))
        return
    except (ValueError, IndexError) as exc:  # struct.error is a ValueError
        harvest.malformed("the TNEF (winmail.dat) stream could not be read", evidence=type(exc).__name__)
        return
    for problem in sorted(set(tnef.problems)):
        harvest.malformed(f"TNEF: {problem}")
    origin = names.origin("TNEF body")
    if tnef.body:
        harvest.add_child("corps.txt", tnef.body, origin)
    if tnef.html:
        harvest.add_child("corps.html", tnef.html, origin)
    if tnef.rtf_compressed:
        import compressed_rtf

        try:
            harvest.add_child("corps.rtf", compressed_rtf.decompress(tnef.rtf_compressed), origin)
        except Exception as exc:  # the decompressor raises its own types on corrupt data
            harvest.malformed("the RTF body could not be decompressed", "corps.rtf", type(exc).__name__)
    for index, attachment in enumerate(tnef.attachments, start=1):
        if not harvest.count_part():
            return
        declared = attachment.name
        name = names.display_name(declared) if declared else f"partie-{index}.bin"
        for finding in names.path_findings(declared, name):
            harvest.add(finding)
        if attachment.data is None:
            harvest.not_inspected("a TNEF attachment", "it holds no data", name)
        elif attachment.embedded_message:
            # An attached Outlook item is itself a TNEF stream: read as such at the next depth.
            harvest.add_child(f"{name or 'message-joint'}-{index}.dat", attachment.data, names.origin("TNEF item"))
        else:
            harvest.add_child(name, attachment.data, names.origin("TNEF attachment"))
