// CompletionText: the text of a result, stop strings and echo, on a tiny
// byte-level tokenizer (runtime/tiny_tokenizer.h).
#include "completion_text.h"

#include <gtest/gtest.h>

#include "runtime/tiny_tokenizer.h"

namespace lockstep::runtime {
namespace {

std::unique_ptr<Tokenizer> Tiny() {
  Result<std::unique_ptr<Tokenizer>> t = CreateTokenizer(testing::TinyHfData());
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return std::move(t).value();
}

Request WithStop(std::vector<std::string> stop) {
  Request r;
  r.prompt_tokens = {265, 259};
  r.stop = std::move(stop);
  return r;
}

TEST(CompletionTextTest, TokensBecomeTheirBytesAndSpecialTokensNothing) {
  auto t = Tiny();
  Request r = WithStop({});
  CompletionText text(*t, r);
  for (int32_t id : {259, 264, 266, 10, int{'x'}}) EXPECT_FALSE(text.Append(id));
  EXPECT_EQ(text.Text(), "hello world\nx");  // <|eos|> (266) adds nothing
  EXPECT_FALSE(text.stopped());
}

TEST(CompletionTextTest, StopStringSpanningTokensCutsTheText) {
  auto t = Tiny();
  Request r = WithStop({"o w"});
  CompletionText text(*t, r);
  EXPECT_FALSE(text.Append(259));  // "hello"
  EXPECT_TRUE(text.Append(264));   // " world": "o w" spans both tokens
  EXPECT_TRUE(text.stopped());
  EXPECT_EQ(text.Text(), "hell");
  EXPECT_TRUE(text.Append('z'));  // no change once stopped
  EXPECT_EQ(text.Text(), "hell");
}

TEST(CompletionTextTest, EarliestOfSeveralStopStringsWins) {
  auto t = Tiny();
  Request r = WithStop({"world", "lo w", "\n"});
  CompletionText text(*t, r);
  EXPECT_FALSE(text.Append(259));
  EXPECT_TRUE(text.Append(264));
  EXPECT_EQ(text.Text(), "hel");  // "lo w" starts before "world"
}

TEST(CompletionTextTest, StopStringCuttingACharacterFindsItsBytes) {
  auto t = Tiny();
  // "é" is the bytes C3 A9, one token each; the stop string is the second
  // byte followed by "!".
  Request r = WithStop({"\xA9!"});
  CompletionText text(*t, r);
  EXPECT_FALSE(text.Append(0xC3));
  EXPECT_EQ(text.Text(), "\xEF\xBF\xBD");  // half a character: U+FFFD
  EXPECT_FALSE(text.Append(0xA9));
  EXPECT_EQ(text.Text(), "é");
  EXPECT_TRUE(text.Append('!'));
  EXPECT_EQ(text.Text(), "\xEF\xBF\xBD");  // cut inside "é"
}

TEST(CompletionTextTest, EchoStartsWithThePromptText) {
  auto t = Tiny();
  Request given_text;
  given_text.prompt_text = "hello";
  given_text.prompt_tokens = {265, 259};
  given_text.echo = true;
  CompletionText a(*t, given_text);
  a.Append(264);
  EXPECT_EQ(a.Text(), "hello world");
  // A prompt given as ids is decoded, without its special tokens.
  Request given_ids;
  given_ids.prompt_tokens = {265, 259, 267};
  given_ids.echo = true;
  CompletionText b(*t, given_ids);
  b.Append(264);
  EXPECT_EQ(b.Text(), "hello<tag> world");
  // echo and a stop string in the completion: the prompt is kept whole.
  given_text.stop = {"hello"};
  CompletionText c(*t, given_text);
  EXPECT_FALSE(c.Append(264));
  EXPECT_TRUE(c.Append(259));
  EXPECT_EQ(c.Text(), "hello world");
}

}  // namespace
}  // namespace lockstep::runtime
