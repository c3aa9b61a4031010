/* test_caption.c — the caption cleaner against fixtures/t5/caption, plus
 * cases outside printable ASCII whose expected text was produced by the
 * reference functions (Open-Sora-Plan's _clean_caption / clean_caption,
 * bs4 4.12.3, ftfy 6.1, Python 3.11), and the pyre regex engine. */
#include "test.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "models/caption.h"
#include "models/pyre.h"
#include "models/utext.h"

static cJSON *load_cases(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/t5/caption/cases.json", test_fixtures_dir());
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    cJSON *root = NULL;
    if (text && fread(text, 1, (size_t)n, f) == (size_t)n)
        root = cJSON_ParseWithLength(text, (size_t)n);
    free(text);
    fclose(f);
    return root;
}

static bool cleans_to(const char *raw, osp_clean_mode mode, const char *want)
{
    size_t len;
    char *got = osp_caption_clean(raw, strlen(raw), mode, &len);
    bool ok = got && len == strlen(want) && strcmp(got, want) == 0;
    if (!ok)
        printf("#   %s(\"%s\") = \"%s\", want \"%s\"\n", osp_clean_mode_name(mode), raw,
               got ? got : "(error)", want);
    free(got);
    return ok;
}

TEST(fixture_cases_exact)
{
    cJSON *root = load_cases();
    CHECK(root != NULL);
    if (!root)
        return;
    static const struct {
        const char *key;
        osp_clean_mode mode;
    } modes[] = {{"clean_inference", OSP_CLEAN_INFERENCE},
                 {"clean_training", OSP_CLEAN_TRAINING},
                 {"no_clean", OSP_CLEAN_LOWER}};
    const cJSON *c;
    int n = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        const char *raw = cJSON_GetObjectItem(c, "raw")->valuestring;
        for (size_t m = 0; m < 3; m++)
            CHECK(cleans_to(raw, modes[m].mode,
                            cJSON_GetObjectItem(c, modes[m].key)->valuestring));
        CHECK(cleans_to(raw, OSP_CLEAN_NONE, raw));
        n++;
    }
    CHECK(n > 0);
    cJSON_Delete(root);
}

/* Expected values from the reference functions (see the file comment). */
TEST(reference_cases_beyond_ascii)
{
    static const struct {
        const char *raw, *want;
    } cases[] = {
        {"\xce\xa3\xce\x91\xce\xa3 \xce\x9f\xce\x94\xce\x9f\xce\xa3: \xce\xa3",
         "\xcf\x83\xce\xb1\xcf\x82 \xce\xbf\xce\xb4\xce\xbf\xcf\x82: \xcf\x83"}, /* final sigma */
        {"\xc4\xb0stanbul at NIGHT", "i\xcc\x87stanbul at night"},
        {"a &lt;b&gt; tag &amp; &copy; 2024 &#8220;quoted&#8221; &#150; dash",
         "a tag 2024 \"quoted\" - dash"},
        {"<script>alert(1)</script>visible<style>p{}</style> text", "visible text"},
        {"<![CDATA[kept  data]]> and <!-- gone --> <?pi x?>", "kept data and"},
        {"<pre>  two  spaces </pre>", "two spaces"},
        {"full\xef\xbd\x97idth \xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3 and \xef\xac\x81ne ligature",
         "fullwidth abc and fine ligature"},
        {"\xe2\x80\x9c" "curly\xe2\x80\x9d \xe2\x80\x98quotes\xe2\x80\x99 \xe2\x80\x94 and "
         "\xe2\x80\x93 dashes", "\"curly\" 'quotes' - and - dashes"},
        {"caf%C3%A9 %E2%9C%93 bad%C3 %zz+plus", "caf\xc3\xa9 \xe2\x9c\x93 bad\xef\xbf\xbd %zz plus"},
        {"tabs\tand\nnewlines\r\nhere", "tabs and newlines here"},
        {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9"
         "\xe3\x83\x88 mixed with english",
         "\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88 mixed with english"},
        {"&foo; &#x41g &#65 x &a", "foo ag a x a"},
        {"terminal \x1b[31mred\x1b[0m text", "terminal 31mred 0m text"},
        {"\xc2\x93smart\xc2\x94 c1", "\"smart\" c1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(cleans_to(cases[i].raw, OSP_CLEAN_INFERENCE, cases[i].want));
        CHECK(cleans_to(cases[i].raw, OSP_CLEAN_TRAINING, cases[i].want));
    }
}

/* The only difference of the training cleaner: strip() right after ftfy. */
TEST(training_strips_after_ftfy)
{
    static const struct {
        const char *raw, *inference, *training;
    } cases[] = {
        {"_http://a.comhttp://a.com", "http:", "http"},
        {"@u@u -:_;:", ":_;", "_;"},
        {".@u.-\n,_http://a.com", ", _http", "_http"},
        {"http://a.com+http://a.com_-;a", ";a", "a"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(cleans_to(cases[i].raw, OSP_CLEAN_INFERENCE, cases[i].inference));
        CHECK(cleans_to(cases[i].raw, OSP_CLEAN_TRAINING, cases[i].training));
    }
}

TEST(lower_and_none_modes)
{
    CHECK(cleans_to("  MiXeD \xce\xa3 Case\t", OSP_CLEAN_LOWER, "mixed \xcf\x83 case"));
    /* none: byte for byte, invalid UTF-8 and all */
    size_t len;
    char *out = osp_caption_clean("A\xff<b>", 5, OSP_CLEAN_NONE, &len);
    CHECK(out && len == 5 && memcmp(out, "A\xff<b>", 5) == 0);
    free(out);
    /* invalid UTF-8 reads as U+FFFD */
    CHECK(cleans_to("ok\xff", OSP_CLEAN_INFERENCE, "ok\xef\xbf\xbd"));
    CHECK(cleans_to("", OSP_CLEAN_INFERENCE, ""));
    CHECK(cleans_to("free shipping", OSP_CLEAN_INFERENCE, ""));
}

TEST(mode_names)
{
    osp_clean_mode m;
    const char *names[] = {"inference", "training", "lower", "none"};
    for (int i = 0; i < 4; i++) {
        CHECK(osp_clean_mode_parse(names[i], &m) && m == (osp_clean_mode)i);
        CHECK(strcmp(osp_clean_mode_name(m), names[i]) == 0);
    }
    CHECK(!osp_clean_mode_parse("Inference", &m));
    CHECK(!osp_clean_mode_parse("", &m));
}

/* Markup on which the reference's parser raises is an error, not a guess. */
TEST(rejected_markup_is_an_error)
{
    osp_error_clear();
    CHECK(osp_caption_clean("a <![foo[x]]> b", 15, OSP_CLEAN_INFERENCE, NULL) == NULL);
    CHECK(osp_error_code() == OSP_ERR_DATA);
    CHECK(strstr(osp_error_message(), "HTML parser") != NULL);
    CHECK(osp_caption_clean("<![1", 4, OSP_CLEAN_TRAINING, NULL) == NULL);
    CHECK(osp_error_code() == OSP_ERR_DATA);
}

/* --------------------------------------------------------------- pyre */

static bool sub_is(const char *pattern, const char *text, const char *repl, const char *want)
{
    osp_pyre *re = osp_pyre_compile(pattern);
    if (!re)
        return false;
    size_t n, len;
    uint32_t *cps = osp_utf8_to_cps(text, strlen(text), &n);
    osp_cpbuf out = {0};
    bool ok = osp_pyre_sub(re, cps, n, repl, &out) == OSP_OK;
    char *got = ok ? osp_cps_to_utf8(out.cp, out.len, &len) : NULL;
    ok = got && strcmp(got, want) == 0;
    if (!ok)
        printf("#   re.sub(%s, %s, %s) = %s, want %s\n", pattern, repl, text, got, want);
    free(got);
    free(cps);
    osp_cpbuf_free(&out);
    osp_pyre_free(re);
    return ok;
}

TEST(pyre_matches_python_re)
{
    /* Values from Python 3.11's re.sub. */
    CHECK(sub_is("a|ab", "abab", "X", "XbXb"));              /* first alternative wins */
    CHECK(sub_is("a{2,3}", "aaaaaaa", "X", "XXa"));           /* greedy counted */
    CHECK(sub_is("x*", "abc", "-", "-a-b-c-"));               /* empty matches */
    CHECK(sub_is("a*", "baac", "-", "-b--c-"));               /* empty right after a match */
    CHECK(sub_is("\\bis\\b", "this is his", "X", "this X his"));
    CHECK(sub_is("\\w+", "caf\xc3\xa9 \xd9\xa3x _", "W", "W W W"));  /* Unicode \w */
    CHECK(sub_is("\\d", "1\xd9\xa3\xc2\xb2", "D", "DD\xc2\xb2"));    /* \d is Nd only */
    CHECK(sub_is("\\s+", "a\xe3\x80\x80\xc2\xa0 b\x1c", " ", "a b "));
    CHECK(sub_is("b$", "ab\n", "X", "aX\n"));                 /* $ before a final newline */
    CHECK(sub_is("^a", "aa", "X", "Xa"));
    CHECK(sub_is("(a)(b)?", "ac ab", "[\\2\\1]", "[a]c [ba]"));
    CHECK(sub_is("a(?!b)", "ab ac", "X", "ab Xc"));
    CHECK(sub_is("(?<=[ab])c", "ac bc cc", "X", "aX bX cc"));
    CHECK(sub_is("[^\\s/>]+", "a b/c>d", "_", "_ _/_>_"));
    CHECK(sub_is("[\\u3040-\\u309f]", "\xe3\x81\x82x", "", "x"));
    CHECK(sub_is("a{,2}", "aaa", "X", "XXX"));                /* {,n} is {0,n} */
    CHECK(sub_is("a{,}", "aa", "X", "XX"));
    CHECK(sub_is("a{}", "a{}", "X", "X"));                    /* not a quantifier: literal */
    CHECK(sub_is("a{x}", "a{x}", "X", "X"));
    /* Unsupported syntax is refused, not misread. */
    const char *bad[] = {"a.b", "a*?", "(?P<n>a)", "\\q", "(a", "a)", "[ab", "(?:)*", "\\"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        osp_error_clear();
        osp_pyre *re = osp_pyre_compile(bad[i]);
        CHECK(re == NULL);
        CHECK(osp_error_code() == OSP_ERR_RUNTIME);
        osp_pyre_free(re);
    }
}

TEST(long_captions_do_not_overflow)
{
    /* 200k characters: the backtracking stack lives on the heap. */
    size_t n = 200000;
    char *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        text[i] = "ab c.d-"[i % 7];
    text[n] = 0;
    size_t len;
    char *out = osp_caption_clean(text, n, OSP_CLEAN_INFERENCE, &len);
    CHECK(out != NULL && len > 0);
    free(out);
    free(text);
}

int main(void)
{
    RUN(fixture_cases_exact);
    RUN(reference_cases_beyond_ascii);
    RUN(training_strips_after_ftfy);
    RUN(lower_and_none_modes);
    RUN(mode_names);
    RUN(rejected_markup_is_an_error);
    RUN(pyre_matches_python_re);
    RUN(long_captions_do_not_overflow);
    return test_summary();
}
