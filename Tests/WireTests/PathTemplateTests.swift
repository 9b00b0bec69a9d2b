import Testing
@testable import Wire

@Suite("path templates")
struct PathTemplateTests {
    let version: PathTemplate = "/v1/models/{model}/versions/{version}"

    @Test("a template reads back as written and names its parameters in path order")
    func description() {
        #expect(version.description == "/v1/models/{model}/versions/{version}")
        #expect(version.parameters == [.model, .version])
    }

    @Test("a path of the template's shape matches and gives each parameter")
    func matches() {
        #expect(version.match("/v1/models/digits/versions/3") == [.model: "digits", .version: "3"])
        #expect(version.match("/v1/models/digits/versions/3?x=1") == [.model: "digits", .version: "3"], "the query is not part of the path")
        #expect(version.match("/v1//models/digits/versions/3/") == [.model: "digits", .version: "3"], "empty segments are skipped, as the daemon always did")
    }

    @Test("a path of another length or with another literal does not match; a prefix match lets the path go on")
    func mismatches() {
        #expect(version.match("/v1/models/digits/versions") == nil)
        #expect(version.match("/v1/models/digits/versions/3/infer") == nil)
        #expect(version.match("/v1/models/digits/aliases/3") == nil)
        #expect(version.match("/v2/models/digits/versions/3") == nil)
        let scope: PathTemplate = "/v1/models/{model}"
        #expect(scope.matchPrefix("/v1/models/digits/anything/else") == [.model: "digits"])
        #expect(scope.matchPrefix("/v1/models") == nil)
    }

    @Test("names with characters that need escaping render escaped and match back to the same text", arguments: [
        "digits", "a b", "100%", "a/b", "x?y#z", "a+b=c&d", "ünïcödé", "日本", "~._-", "%2F",
    ])
    func escapingRoundTrip(name: String) {
        let target = version.render([.model: name, .version: "7"])
        #expect(target.utf8.allSatisfy { $0 < 0x80 && $0 != UInt8(ascii: " ") }, "\(target) is not plain ASCII")
        #expect(target.split(separator: "/").count == 5, "\(target): the name stays one segment")
        #expect(version.match(target) == [.model: name, .version: "7"], "\(target)")
    }

    @Test("escaping keeps RFC 3986's unreserved characters and writes every other byte as %XX, upper case")
    func escape() {
        #expect(PathTemplate.escape("AZaz09-._~") == "AZaz09-._~")
        #expect(PathTemplate.escape("a b/c%d?e&f=g+h,i") == "a%20b%2Fc%25d%3Fe%26f%3Dg%2Bh%2Ci")
        #expect(PathTemplate.escape("é") == "%C3%A9")
        #expect(PathTemplate.escape("") == "")
    }

    @Test("a segment with a malformed escape is kept as sent")
    func malformedEscape() {
        #expect(version.match("/v1/models/a%zz/versions/1") == [.model: "a%zz", .version: "1"])
    }

    @Test("two templates overlap when they have one length and, at each place, a parameter or the same literal")
    func overlap() {
        #expect(PathTemplate("/v1/models/{model}").overlaps("/v1/models/status"))
        #expect(PathTemplate("/v1/models/{model}/rollout").overlaps("/v1/models/{model}/rollout"))
        #expect(!PathTemplate("/v1/models/{model}/promote").overlaps("/v1/models/{model}/rollback"))
        #expect(!PathTemplate("/v1/models/{model}").overlaps("/v1/models/{model}/rollout"))
        #expect(!PathTemplate("/v1/events/verify").overlaps("/v1/models/{model}"))
    }

    @Test("the Allow order is reads before writes: GET, POST, PUT, DELETE")
    func methodOrder() {
        #expect(HTTPMethod.allCases.sorted() == [.get, .post, .put, .delete])
        #expect([HTTPMethod.delete, .get, .put].sorted() == [.get, .put, .delete])
    }
}
