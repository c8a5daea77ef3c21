-- bleu_spec.lua — corpus BLEU (nnlua.metrics.bleu) against values worked out by hand, with the
-- arithmetic in the comments: clipped counts, several references, corpus sums, brevity penalty.
local bleu = require "nnlua.metrics.bleu"

local function near(want, got, what)
  assert(math.abs(want - got) < 1e-9, ("%s: want %.12f, got %.12f"):format(what, want, got))
end

describe("bleu", function()
  it("clips a repeated word by its count in the references (Papineni et al.'s example)", function()
    -- hypothesis: 7 x "the"; "the" occurs at most twice in one reference -> p1 = 2/7.
    -- c = 7; reference lengths 6 and 7, the closest is 7 -> r = 7, c > r fails, BP = exp(1 - 7/7) = 1.
    -- No hypothesis bigram ("the the") is in a reference -> p2 = 0 -> BLEU-2..4 = 0 without smoothing.
    local s, st = bleu.sentence({ "the cat is on the mat", "there is a cat on the mat" },
                                "the the the the the the the")
    near(2 / 7, s[1], "BLEU-1")
    assert.are.same({ 2, 0, 0, 0 }, st.matches)
    assert.are.same({ 7, 6, 5, 4 }, st.counts)
    assert.are.equal(0, s[2])
    assert.are.equal(0, s[4])
  end)

  it("one short hypothesis: n-gram precisions and the brevity penalty", function()
    -- hyp "a cat on the mat" (c = 5), ref "the cat is on the mat" (r = 6)
    -- 1-grams a:0 cat:1 on:1 the:1 mat:1          -> 4/5
    -- 2-grams "a cat":0 "cat on":0 "on the":1 "the mat":1 -> 2/4
    -- 3-grams "a cat on":0 "cat on the":0 "on the mat":1 -> 1/3
    -- 4-grams both absent                          -> 0/2
    -- BP = exp(1 - 6/5) = exp(-0.2) = 0.818730753078
    -- BLEU-1 = 0.818730753078 * 0.8                 = 0.654984602462
    -- BLEU-2 = BP * (0.8 * 0.5)^(1/2) = BP * 0.632455532 = 0.517810794030
    -- BLEU-3 = BP * (0.8 * 0.5 / 3)^(1/3) = BP * 0.510868869 = 0.418267399116
    -- BLEU-4 = 0 (no 4-gram matches)
    local s, st = bleu.sentence({ "the cat is on the mat" }, "a cat on the mat")
    assert.are.same({ 4, 2, 1, 0 }, st.matches)
    assert.are.same({ 5, 4, 3, 2 }, st.counts)
    assert.are.equal(5, st.hyp_len)
    assert.are.equal(6, st.ref_len)
    near(0.654984602462, s[1], "BLEU-1")
    near(0.517810794030, s[2], "BLEU-2")
    near(0.418267399116, s[3], "BLEU-3")
    assert.are.equal(0, s[4])
  end)

  it("sums clipped counts over the corpus before taking precisions, with several references", function()
    -- H1 "two shirts side by side" (5) against "two shirts side by side" (5) and "there are two
    --   shirts next to each other" (8): every n-gram matches: 5/5, 4/4, 3/3, 2/2; closest r = 5.
    -- H2 "a bag a bag" (4) against "a bag and a coat" (5), "a coat beside a bag" (5):
    --   1-grams a x2 (refs have 2) -> 2, bag x2 (refs have 1) -> 1: 3/4
    --   2-grams "a bag" x2 (1 per ref) -> 1, "bag a" -> 0: 1/3;  3-grams 0/2;  4-grams 0/1;  r = 5
    -- corpus: p1 = 8/9, p2 = 5/7, p3 = 3/5, p4 = 2/3; c = 9, r = 10, BP = exp(1 - 10/9) = 0.894839316814
    -- BLEU-1 = BP * 8/9                                  = 0.795412726057
    -- BLEU-2 = BP * (8/9 * 5/7)^(1/2)        = BP * 0.796819 = 0.713025034809
    -- BLEU-3 = BP * (8/9 * 5/7 * 3/5)^(1/3)                 = 0.648687140064
    -- BLEU-4 = BP * (8/9 * 5/7 * 3/5 * 2/3)^(1/4)           = 0.635243040641
    -- (H2 alone has no 3-gram match, so averaging sentence scores would differ: corpus BLEU sums.)
    local refs = {
      { "two shirts side by side", "there are two shirts next to each other" },
      { "a bag and a coat", "a coat beside a bag" },
    }
    local s, st = bleu.corpus(refs, { "two shirts side by side", "a bag a bag" })
    assert.are.same({ 8, 5, 3, 2 }, st.matches)
    assert.are.same({ 9, 7, 5, 3 }, st.counts)
    assert.are.equal(10, st.ref_len)
    near(0.894839316814, bleu.brevity_penalty(st.hyp_len, st.ref_len), "BP")
    near(0.795412726057, s[1], "BLEU-1")
    near(0.713025034809, s[2], "BLEU-2")
    near(0.648687140064, s[3], "BLEU-3")
    near(0.635243040641, s[4], "BLEU-4")
  end)

  it("penalises a candidate shorter than its references", function()
    -- "a bag" (c = 2) against "a bag in the corner" (r = 5): p1 = 2/2, p2 = 1/1, BP = exp(1 - 5/2)
    -- = exp(-1.5) = 0.223130160148, so BLEU-1 = BLEU-2 = 0.223130160148; no 3-gram exists -> 0.
    local s = bleu.sentence({ "a bag in the corner" }, "a bag")
    near(math.exp(-1.5), s[1], "BLEU-1")
    near(math.exp(-1.5), s[2], "BLEU-2")
    assert.are.equal(0, s[3])
  end)

  it("takes the closest reference length, the shorter one on a tie, and BP = 1 when longer", function()
    -- c = 5; references of 4 and 6 words are both 1 away: r = 4 (NLTK's tie rule), c > r: BP = 1
    local _, st = bleu.sentence({ "a b c d", "a b c d e f" }, "a b c d e")
    assert.are.equal(4, st.ref_len)
    assert.are.equal(1, bleu.brevity_penalty(st.hyp_len, st.ref_len))
    -- equal length: BP = exp(1 - 1) = 1
    assert.are.equal(1, bleu.brevity_penalty(5, 5))
    near(math.exp(1 - 6 / 5), bleu.brevity_penalty(5, 6), "BP 5 vs 6")
  end)

  it("gives 0 for no matching words and for an empty hypothesis", function()
    local s = bleu.corpus({ { "a bag" } }, { "two shirts" })
    assert.are.same({ 0, 0, 0, 0 }, s)
    s = bleu.corpus({ { "a bag" } }, { "" })
    assert.are.same({ 0, 0, 0, 0 }, s)
    assert.are.equal(0, bleu.brevity_penalty(0, 3))
  end)

  it("a perfect match scores 1, and token lists work as strings do", function()
    local s = bleu.corpus({ { "two bags one above the other" } }, { { "two", "bags", "one", "above", "the", "other" } })
    for k = 1, 4 do near(1, s[k], "BLEU-" .. k) end
    s = bleu.corpus({ { { 5, 9, 7 } } }, { { 5, 9, 7 } }, { max_n = 3 })
    assert.are.equal(3, #s)
    near(1, s[3], "ids BLEU-3")
  end)

  it("reports bad input", function()
    assert.has_error(function() bleu.corpus({ { "a" } }, { "a", "b" }) end, "bleu: 1 reference lists for 2 hypotheses")
    assert.has_error(function() bleu.corpus({ {} }, { "a" }) end, "bleu: hypothesis 1 needs a non-empty list of references")
  end)
end)
