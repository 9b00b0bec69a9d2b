import Foundation
import Runtime
import Testing
@testable import Registry

/// The manifest's `heads`: how they are read, checked against the model, cut and normalised.
@Suite("heads")
struct HeadsTests {
    static func parse(_ json: String) -> Result<Manifest, RegistryError> {
        do throws(RegistryError) { return .success(try Manifest.parse(file: "m/1/manifest.json", data: Data(json.utf8))) } catch { return .failure(error) }
    }

    static func message(_ json: String) -> String {
        switch parse(json) {
        case .success: "parsed"
        case .failure(let error): error.message
        }
    }

    @Test("the fixture's manifest reads as three heads of one output, in order, with their names")
    func fixtureManifest() throws {
        let manifest = try Self.parse(String(contentsOfFile: "\(fixtures)/skin_heads_manifest.json", encoding: .utf8)).get()
        let heads = try #require(manifest.heads["logits"])
        #expect(heads.map(\.name) == ["skin_type", "hair_type", "condition"])
        #expect(heads.map(\.size) == [5, 4, 5] && heads.map(\.softmax) == [true, true, false])
        #expect(heads[1].labels == ["straight", "wavy", "curly", "coily"])
        // softmax defaults to false, labels to none.
        let bare = try Self.parse(#"{"heads":{"y":[{"name":"a","size":2},{"name":"b","size":1,"softmax":null}]}}"#).get()
        #expect(bare.heads["y"] == [Manifest.Head(name: "a", size: 2), Manifest.Head(name: "b", size: 1)])
    }

    @Test("a malformed head names the manifest key", arguments: [
        (#"{"heads":[1]}"#, "key 'heads': expected an object of output name to an array of heads, got an array"),
        (#"{"heads":{"y":[]}}"#, "key 'heads.y': expected a non-empty array of heads"),
        (#"{"heads":{"y":{"name":"a"}}}"#, "key 'heads.y': expected a non-empty array of heads"),
        (#"{"heads":{"y":["a"]}}"#, "key 'heads.y[0]': expected an object"),
        (#"{"heads":{"y":[{"size":2}]}}"#, "key 'heads.y[0].name': expected a non-empty string, got nothing"),
        (#"{"heads":{"y":[{"name":"","size":2}]}}"#, "key 'heads.y[0].name': expected a non-empty string"),
        (#"{"heads":{"y":[{"name":"a"}]}}"#, "key 'heads.y[0].size': expected an integer from 1 to 16777216, got nothing"),
        (#"{"heads":{"y":[{"name":"a","size":0}]}}"#, "key 'heads.y[0].size': expected an integer from 1 to 16777216, got 0"),
        (#"{"heads":{"y":[{"name":"a","size":2.5}]}}"#, "got 2.5"),
        (#"{"heads":{"y":[{"name":"a","size":true}]}}"#, "got a boolean"),
        (#"{"heads":{"y":[{"name":"a","size":2,"softmax":"yes"}]}}"#, "key 'heads.y[0].softmax': expected true or false, got a string"),
        (#"{"heads":{"y":[{"name":"a","size":2,"labels":"x"}]}}"#, "key 'heads.y[0].labels': expected an array of strings"),
        (#"{"heads":{"y":[{"name":"a","size":2,"labels":["x",1]}]}}"#, "key 'heads.y[0].labels': expected an array of strings"),
        (#"{"heads":{"y":[{"name":"a","size":2,"labels":["x"]}]}}"#, "key 'heads.y[0].labels': 1 names for a head of size 2; give one name per class"),
        (#"{"heads":{"y":[{"name":"a","size":2,"sofmax":true}]}}"#, "key 'heads.y[0].sofmax': unknown key (did you mean 'heads.y[0].softmax'?)"),
        (#"{"heads":{"y":[{"name":"a","size":2},{"name":"a","size":1}]}}"#, "key 'heads.y[1].name': head 'a' is already named by 'heads.y[0]'"),
        (#"{"heads":{"y":[{"name":"a","size":2}],"z":[{"name":"a","size":1}]}}"#, "key 'heads.z[0].name': head 'a' is already named by 'heads.y[0]'"),
        (#"{"heads":{"y":[{"name":"z","size":2}],"z":[{"name":"b","size":1}]}}"#, "key 'heads.y[0].name': 'z' is an output that heads split"),
        (#"{"labels":{"a":["p","q"]},"heads":{"y":[{"name":"a","size":2}]}}"#, "key 'labels.a': 'a' is a head; give its class names in its entry under 'heads'"),
    ])
    func malformed(json: String, expected: String) {
        let message = Self.message(json)
        #expect(message.hasPrefix("m/1/manifest.json: ") && message.contains(expected), "\(message)")
    }

    @Test("heads are checked against the model's outputs: the output exists, is FP32 with a fixed last dimension their sizes add up to, and their names are new")
    func checkedAgainstTheModel() throws {
        let outputs = [TensorInfo(name: "logits", elementType: .float, shape: [.variable(name: "N"), .fixed(14)]),
                       TensorInfo(name: "label", elementType: .int64, shape: [.variable(name: nil)]),
                       TensorInfo(name: "open", elementType: .float, shape: [.fixed(2), .variable(name: "C")])]
        func message(_ heads: [String: [Manifest.Head]]) -> String {
            do throws(RegistryError) { try HeadsServable.check(heads, outputs: outputs); return "fits" } catch { return error.message }
        }
        let fixture = try #require(Self.parse(String(contentsOfFile: "\(fixtures)/skin_heads_manifest.json", encoding: .utf8)).get().heads["logits"])
        #expect(message(["logits": fixture]) == "fits")
        #expect(message(["logit": fixture]) == "manifest key 'heads.logit': the model has no output 'logit' (outputs: logits, label, open)")
        #expect(message(["label": [Manifest.Head(name: "a", size: 1)]]) == "manifest key 'heads.label': output 'label' is INT64; heads split FP32 outputs only")
        #expect(message(["open": [Manifest.Head(name: "a", size: 1)]]).hasPrefix("manifest key 'heads.open': output 'open' has no fixed last dimension to split"))
        #expect(message(["logits": Array(fixture.dropLast())]) == "manifest key 'heads.logits': the heads' sizes add up to 9 (5+4), output 'logits' has 14 in its last dimension")
        #expect(message(["logits": [Manifest.Head(name: "label", size: 14)]]) == "manifest key 'heads.logits[0].name': 'label' is already an output of the model")
    }

    @Test("a head is its slice of every row; softmax subtracts the maximum, so huge logits give probabilities, not NaN")
    func cutAndSoftmax() throws {
        let source = try Tensor(shape: [2, 5], scalars: [Float(1), 2, 3, 4, 5, 1000, 1001, 1002, -1e30, 7])
        let raw = try HeadsServable.cut(HeadsServable.Slice(name: "b", source: "y", offset: 2, size: 3, softmax: false), from: source)
        #expect(try raw.shape == [2, 3] && raw.scalars(as: Float.self) == [3, 4, 5, 1002, -1e30, 7])
        let soft = try HeadsServable.cut(HeadsServable.Slice(name: "a", source: "y", offset: 0, size: 3, softmax: true), from: source)
        let values = try soft.scalars(as: Float.self)
        #expect(values.allSatisfy { $0.isFinite })
        // Rows 1, 2, 3 and 1000, 1001, 1002 differ by the same steps: the same probabilities.
        #expect(Array(values[0..<3]) == Array(values[3..<6]))
        let expected = [0.0, 1.0, 2.0].map { exp($0 - 2) / (exp(-2) + exp(-1) + 1) }
        for (value, reference) in zip(values[0..<3], expected) { #expect(abs(Double(value) - reference) < 1e-7) }
        #expect(abs(values[0..<3].reduce(0, +) - 1) < 1e-6)
    }
}
