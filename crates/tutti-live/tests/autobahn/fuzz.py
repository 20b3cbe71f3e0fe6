"""Run the Autobahn testsuite's WebSocket cases of sections 1-7 against a server, with
autobahn 0.10.9's client and the suite's own case classes (ported by port.py), then check
each result against what this repository accepts.

Usage: python fuzz.py URL PORTED_DIR NON_STRICT_FILE SUMMARY_OUT [CASES...]

The client is the suite's fuzzing client (autobahntestsuite.fuzzing.FuzzingClientProtocol
and FuzzingClientFactory, which drive the cases exactly as `wstest -m fuzzingclient`
does); only these differ, as Python 3 needs:
  * autobahn 0.10.9's `sendFrame(payload_len=...)` uses Python 2 division; the payload is
    repeated to that length before the call instead;
  * payloads: the ported cases hold byte strings as str (one char per byte, see
    port.py), so what they send is encoded as latin-1 at the wire and what comes back is
    decoded so, making expected and received events compare as in Python 2;
  * the end of a case records the case's verdict (behavior, close behavior) instead of the
    suite's HTML/JSON report formatting.

A case passes when both its behavior and its close behavior are OK or INFORMATIONAL.
NON-STRICT is accepted only for the cases NON_STRICT_FILE lists, with the reason; any
other outcome fails. SUMMARY_OUT gets the per-case table (Markdown). Exit 1 on a failure.
"""

import json
import sys
import time

sys.path.insert(0, sys.argv[2])

from twisted.internet import reactor  # noqa: E402
from autobahn.twisted.websocket import WebSocketClientProtocol, connectWS  # noqa: E402

from autobahntestsuite import fuzzing  # noqa: E402
from autobahntestsuite.case import Cases  # noqa: E402


def to_bytes(x):
    return x.encode("latin-1") if isinstance(x, str) else x


def to_str(x):
    return x.decode("latin-1") if isinstance(x, (bytes, bytearray)) else x


class Protocol(fuzzing.FuzzingClientProtocol):
    # The wire log and traffic stats are for the HTML report, which is not made here.
    def logRxOctets(self, data):
        pass

    def logTxOctets(self, data, sync):
        pass

    def logRxFrame(self, frameHeader, payload):
        pass

    def logTxFrame(self, frameHeader, payload, repeatLength, chopsize, sync):
        pass

    def onConnect(self, response):
        if not self.caseAgent:
            self.caseAgent = response.headers.get("server", "UnknownServer")

    # What the cases send: Python 2 byte strings (str here) to bytes.
    def sendFrame(self, opcode, payload=b"", fin=True, rsv=0, mask=None, payload_len=None,
                  chopsize=None, sync=False):
        payload = to_bytes(payload)
        if payload_len is not None and payload:
            # autobahn 0.10.9 repeats the payload up to payload_len with Python 2's integer
            # `/`; the same repetition, done here.
            payload = (payload * (payload_len // len(payload) + 1))[:payload_len]
            payload_len = None
        return WebSocketClientProtocol.sendFrame(self, opcode, payload, fin, rsv, mask,
                                                 payload_len, chopsize, sync)

    def sendMessage(self, payload, *args, **kwargs):
        return WebSocketClientProtocol.sendMessage(self, to_bytes(payload), *args, **kwargs)

    def sendMessageFrameData(self, payload, *args, **kwargs):
        return WebSocketClientProtocol.sendMessageFrameData(self, to_bytes(payload), *args, **kwargs)

    def sendCloseFrame(self, code=None, reasonUtf8=None, isReply=False):
        return WebSocketClientProtocol.sendCloseFrame(self, code, to_bytes(reasonUtf8), isReply)

    # What comes back: bytes to the cases' strs.
    def onMessage(self, payload, isBinary):
        fuzzing.FuzzingClientProtocol.onMessage(self, to_str(payload), isBinary)

    def onPong(self, payload):
        fuzzing.FuzzingClientProtocol.onPong(self, to_str(payload))

    def connectionLost(self, reason):
        WebSocketClientProtocol.connectionLost(self, reason)
        if self.runCase:
            self.runCase.onConnectionLost(self.failedByMe)
            self.factory.record(self)


class Factory(fuzzing.FuzzingClientFactory):
    protocol = Protocol

    def __init__(self, spec):
        self.results = {}
        fuzzing.FuzzingClientFactory.__init__(self, spec)

    def buildProtocol(self, addr):
        proto = Protocol()
        proto.factory = self
        proto.caseAgent = self.agent
        proto.case = self.currentCaseIndex
        proto.Case = Cases[self.currentCaseIndex - 1]
        proto.runCase = proto.Case(proto)
        return proto

    def record(self, proto):
        case = proto.runCase
        self.results[self.CaseSet.caseClasstoId(proto.Case)] = {
            "behavior": case.behavior,
            "behaviorClose": case.behaviorClose,
            "result": case.result,
            "resultClose": case.resultClose,
            "remoteCloseCode": proto.remoteCloseCode,
            "ms": int(round(1000 * (time.time() - proto.caseStart))) if proto.caseStart else None,
        }

    def createReports(self):
        pass


# Cases whose server close code, as the client sees it, depends on timing: the codes it can
# be, and why. (The verdicts do not depend on it.)
RACY_CLOSE_CODES = {
    "7.1.6": (("1009", "-"), "Informational. The 256 KiB message is refused with 1009 while "
              "the client is still sending it; whether that close frame is read before the TCP "
              "connection is reset depends on timing."),
}


def main():
    url, _, non_strict_file, summary_out = sys.argv[1:5]
    patterns = sys.argv[5:] or ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*"]
    non_strict = {}
    for line in open(non_strict_file, encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#"):
            case, _, why = line.partition(" ")
            non_strict[case] = why.strip()
    spec = {
        "servers": [{"agent": "tutti-live", "url": url}],
        "cases": patterns,
        "exclude-agent-cases": {},
    }
    started = time.time()
    factory = Factory(spec)
    reactor.run()
    results = factory.results
    ok_values = ("OK", "INFORMATIONAL")
    failed = []
    rows = []
    for case_id in factory.specCases:
        r = results.get(case_id)
        if r is None:
            failed.append(f"{case_id}: no result")
            rows.append(f"| {case_id} | (none) | (none) | |")
            continue
        b, c = r["behavior"], r["behaviorClose"]
        note = ""
        if b in ok_values and c in ok_values:
            pass
        elif case_id in non_strict and {b, c} <= {"OK", "INFORMATIONAL", "NON-STRICT"}:
            note = non_strict[case_id]
        else:
            failed.append(f"{case_id}: {b} ({r['result']}) / close {c} ({r['resultClose']})"
                          f", close code {r['remoteCloseCode']}")
            note = "**not accepted**"
        code = r["remoteCloseCode"] if r["remoteCloseCode"] is not None else "-"
        racy = RACY_CLOSE_CODES.get(case_id)
        if racy and str(code) in racy[0]:
            code = " or ".join(racy[0])
            note = (note + " " if note else "") + racy[1]
        rows.append(f"| {case_id} | {b} | {c} | {code} | {note} |")
    stale = sorted(set(non_strict) - {c for c in factory.specCases
                                      if results.get(c, {}).get("behavior") == "NON-STRICT"
                                      or results.get(c, {}).get("behaviorClose") == "NON-STRICT"})
    if stale and not sys.argv[5:]:
        failed.append(f"listed as non-strict but not non-strict now: {', '.join(stale)}")
    counts = {}
    for r in results.values():
        key = (r["behavior"], r["behaviorClose"])
        counts[key] = counts.get(key, 0) + 1
    with open(summary_out, "w", encoding="utf-8") as f:
        f.write("| Case | Behavior | Close behavior | Server's close code | Why accepted |\n")
        f.write("|---|---|---|---|---|\n")
        f.write("\n".join(rows) + "\n")
    elapsed = time.time() - started
    print(f"autobahn: {len(results)} of {len(factory.specCases)} cases run in {elapsed:.1f}s; "
          + ", ".join(f"{n} {b}/{c}" for (b, c), n in sorted(counts.items())))
    if failed:
        print("autobahn: cases not accepted:\n  " + "\n  ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
