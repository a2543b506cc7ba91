r"""Evaluation benchmarks: loaders for the bundled test splits and the paper's prompts.

Benchmarks (``data/benchmarks``, see ``data/NOTICE.md`` for sources and licences): ``gsm8k``
(1,319), ``math`` (MATH test, 5,000), ``cmath`` (1,098), ``gaokao_mathqa`` (351, multiple
choice) and ``gaokao_mathcloze`` (118, fill in the blanks).

Prompts, as the paper's evaluation (DeepSeekMath section 2.3 / 3; the prompt texts and layouts
of its released harness):

- few-shot chain of thought (``prompt_style="few_shot"``, for base models): GSM8K 8-shot
  "Q:/A:" (the exemplars of Wei et al., 2022); MATH 4-shot in the Minerva layout
  "Problem:/Solution:" ending in "Final Answer: The final answer is X. I hope it is correct."
  (Lewkowycz et al., 2022); CMATH 6-shot "问题：/答案："; Gaokao MathQA and MathCloze 5-shot
  "问题 N./问题 N的解析:". The exemplars are data (``FEW_SHOT_EXEMPLARS``), copied from the
  published prompts in deepseek-ai/DeepSeek-Math@21cc5c6 ``evaluation/few_shot_prompts`` (MIT),
  including their small typos, so numbers stay comparable. ``shots=N`` keeps the first N.
- zero-shot chat (``prompt_style="chat"``, for instruction-tuned models): the question plus
  DeepSeekMath-Instruct's instruction ("Please reason step by step, and put your final answer
  within \boxed{}." or its Chinese version), through the tokenizer's chat template (a plain
  "User: ...\n\nAssistant:" layout when the tokenizer has none).

Generation stops at the next exemplar header (``stop_strings``); completions are also cut
there after decoding, so a model that runs on never leaks a second answer into extraction.
"""
from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.paths import BENCHMARK_DIR
from training.answers import gold_answer

COT_INSTRUCTION_EN = "Please reason step by step, and put your final answer within \\boxed{}."
COT_INSTRUCTION_ZH = "请通过逐步推理来解答问题，并把最终答案放置于\\boxed{}中。"

# ------------------------------------------------------------------------------------------
# Few-shot exemplars (question, worked answer), in published order.
# ------------------------------------------------------------------------------------------

GSM8K_EXEMPLARS: list[tuple[str, str]] = [
    (("There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, "
     "there will be 21 trees. How many trees did the grove workers plant today?"),
     ("There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have "
     "been 21 - 15 = 6. The answer is 6.")),
    ("If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
     "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5."),
    ("Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
     ("Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, "
     "they had 74 - 35 = 39. The answer is 39.")),
    (("Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did "
     "Jason give to Denny?"),
     ("Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. "
     "The answer is 8.")),
    ("Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
     ("Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. "
     "The answer is 9.")),
    (("There were nine computers in the server room. Five more computers were installed each day, from monday to "
     "thursday. How many computers are now in the server room?"),
     ("There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers "
     "were added. 9 + 20 is 29. The answer is 29.")),
    (("Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf "
     "balls did he have at the end of wednesday?"),
     ("Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, "
     "he had 35 - 2 = 33 golf balls. The answer is 33.")),
    ("Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
     ("Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars "
     "left. 23 - 15 is 8. The answer is 8.")),
]

MATH_EXEMPLARS: list[tuple[str, str]] = [
    (r"Find the domain of the expression $\frac{\sqrt{x-2}}{\sqrt{5-x}}$.}",
     r"""The expressions inside each square root must be non-negative.
Therefore, $x-2 \ge 0$, so $x\ge2$, and $5 - x \ge 0$, so $x \le 5$.
Also, the denominator cannot be equal to zero, so $5-x>0$, which gives $x<5$.
Therefore, the domain of the expression is $\boxed{[2,5)}$.
Final Answer: The final answer is $[2,5)$. I hope it is correct."""),
    (r"If $\det \mathbf{A} = 2$ and $\det \mathbf{B} = 12,$ then find $\det (\mathbf{A} \mathbf{B}).$",
     r"""We have that $\det (\mathbf{A} \mathbf{B}) = (\det \mathbf{A})(\det \mathbf{B}) = (2)(12) = \boxed{24}.$
Final Answer: The final answer is $24$. I hope it is correct."""),
    (("Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights instead, how many times "
     "must Terrell lift them in order to lift the same total weight?"),
     r"""If Terrell lifts two 20-pound weights 12 times, he lifts a total of $2\cdot 12\cdot20=480$ pounds of weight.  If he lifts two 15-pound weights instead for $n$ times, he will lift a total of $2\cdot15\cdot n=30n$ pounds of weight.  Equating this to 480 pounds, we can solve for $n$: \begin{align*}
30n&=480\\
\Rightarrow\qquad n&=480/30=\boxed{16}
\end{align*}
Final Answer: The final answer is $16$. I hope it is correct."""),
    (r"""If the system of equations

\begin{align*}
6x-4y&=a,\\
6y-9x &=b.
\end{align*}has a solution $(x, y)$ where $x$ and $y$ are both nonzero, find $\frac{a}{b},$ assuming $b$ is nonzero.""",
     r"""If we multiply the first equation by $-\frac{3}{2}$, we obtain

$$6y-9x=-\frac{3}{2}a.$$Since we also know that $6y-9x=b$, we have

$$-\frac{3}{2}a=b\Rightarrow\frac{a}{b}=\boxed{-\frac{2}{3}}.$$
Final Answer: The final answer is $-\frac{2}{3}$. I hope it is correct."""),
]

CMATH_EXEMPLARS: list[tuple[str, str]] = [
    ("芳芳买了一本书有99页，看了90页，她还剩多少页没有看？",
     "还剩的没有看的页数=书的总页数-芳芳看了的页数，99-90=9。所以答案是：9。"),
    ("张师傅上午修了18把椅子，下午修了29把椅子，一天共修了多少把椅子？",
     "一天共修的椅子数量=上午修的椅子数量+下午修的椅子数量，18+29=47。所以答案是：47。"),
    ("小猴摘了84个桃子，平均分给6只猴子，每只猴子能吃到几个桃子？",
     "每只猴子能吃到的桃子数=总桃子数/猴子的数量，84/6=14。所以答案是：14。"),
    (("用面包机烤面包时，第一面烤2分钟，第二面只要烤1分钟，即烤一片面包需要3分钟，小勤的面包机一次只能放2片，他每天早上吃3片面包，"
     "至少需要烤多少分钟？"),
     ("可以现将两片面包放入面包机烤2分钟，再将其中一片拿出来，将第三片面包放进去，烤1分钟，这样第一片面包就烤好了，将第一片面包拿出来"
     "将第二片面包放进去，继续烤1分钟，于是第二片面包也烤好了将其拿出来，第三片面包再烤1分钟也就烤好了，一共是2+1+1=5。所以答案是：5。")),
    ("一组学生植树，每人栽6棵还剩4棵；如果其中3人各栽5棵，其余每人各栽7棵，正好栽完。这一组学生有多少人？",
     ("假设学生的数量是x，每人栽6棵还剩4棵，也就是说树苗的数量=6x+4，又知道如果其中3人各栽5棵，其余每人各栽7棵，正好栽完，"
     "即6x+4=3*5+(x-3)*7，化简方程得到：x=10。所以答案是：10。")),
    (("某小学在“献爱心--为汶川地震区捐款”活动中，六年级五个班共捐款8000元，其中一班捐款1500元，二班比一班多捐款200元，三班捐款1600元，"
     "四班与五班捐款数之比是3：5．四班捐款多少元？"),
     ("一班捐款1500元，而二班比一班多捐200元，所以二班捐款1500+200=1700元，又知道六年级五个班一共捐款8000元，所以四班和五班捐款之和 = "
     "一共捐款 - 一班和二班和三班捐款之和，即8000-1500-1700-1600=3200元，而题目说四班与五班捐款数之比是3：5，则四班捐款了3200/(3+5)*3=1200元。"
     "所以答案是：1200。")),
]

GAOKAO_MATHQA_EXEMPLARS: list[tuple[str, str]] = [
    (r"""已知 $\alpha, \beta, \gamma$ 是互不相同的锐角, 则在 $\sin \alpha \cos \beta, \sin \beta \cos \gamma, \sin \gamma \cos \alpha$ 三个值中, 大于 $\frac{1}{2}$ 的个数的最大值是 ($\quad$)
从以下选项中选择:    (A)0 (B)1 (C)2 (D)3""",
     r"""1. 如果 $\alpha, \beta, \gamma$ 均小于 $60^\circ$，那么他们的正弦值都小于 $\frac{1}{2}$，因此三个值中不可能有大于 $\frac{1}{2}$ 的值。
2. 如果有一个角大于 $60^\circ$，假设为 $\alpha$，那么对应的正弦值大于 $\frac{1}{2}$。此时，由于三角形内角和为 $180^\circ$，所以 $\beta + \gamma < 120^\circ$。这意味着 $\beta, \gamma$ 的余弦值均大于 $\frac{1}{2}$，所以此时 $\sin \alpha \cos \beta > \frac{1}{2}, \sin \beta \cos \gamma > \frac{1}{2}$。
3. 如果有两个角大于 $60^\circ$，例如 $\alpha$ 和 $\beta$，那么由于三角形内角和为 $180^\circ$，我们可以得到 $\gamma < 60^\circ$，此时 $\sin \gamma < \frac{1}{2}$。由于 $\alpha$ 和 $\beta$ 
的余弦值都小于 $\frac{1}{2}$，因此三个值中不可能有大于 $\frac{1}{2}$ 的值。
4. 如果三个角都大于 $60^\circ$，显然不符合题意。
综上所述，当有一个角大于 $60^\circ$ 时，大于 $\frac{1}{2}$ 的个数的最大值是 2。
答案是 C"""),
    (r"""正方体 $A B C D-A_{1} B_{1} C_{1} D_{1}$ 中, $B B_{1}$ 与平面 $A C D_{1}$ 所成角的余弦值为 ($\qquad$)
从以下选项中选择:    (A)$\frac{\sqrt{2}}{3}$ (B)$\frac{\sqrt{3}}{3}$ (C)$\frac{2}{3}$ (D)$\frac{\sqrt{6}}{3}$""",
     r"""设上下底面的中心分别为 $\mathrm{O}_{1}, \mathrm{O}$, 设正方体的棱长等于 1 , 则 $O_{1} O$ 与平面 $A C D_{1}$ 所成角就是 $B B_{1}$ 与平面 $A C D_{1}$ 所成角, 即 $\angle O_{1} O D_{1}$,
直角三角形 $\mathrm{OO}_{1} \mathrm{D}_{1}$ 中, $\cos \angle \mathrm{O}_{1} \mathrm{OD}_{1}=\frac{\mathrm{O}_{1} \mathrm{O}}{\mathrm{OD}_{1}}=\frac{\frac{1}{\sqrt{6}}}{2}=\frac{\sqrt{6}}{3}$. 
答案是 C"""),
    (r"""设函数 $f(x)=\left\{\begin{array}{ll}1+\log _{2}(2-x), & x<1 \\ 2^{x-1}, & x \geqslant 1,\end{array}\right.$ 则 $f(-2)+f\left(\log _{2} 12\right)=$ ($\qquad$)
从以下选项中选择:    (A)3 (B)6 (C)9 (D)12""",
     r"""首先，我们可以根据定义计算 $f(-2)$ 和 $f(\log_2 12)$：
$f(-2)=1+\log_2(2-(-2))=1+\log_2 4=3$
$f(\log_2 12)=2^{\log_2 12-1}=6$
因此，$f(-2)+f(\log_2 12)=3+6=9$。
答案是 C"""),
    (r"""已知函数 $f(x)=a x^{3}-3 x^{2}+1$, 若 $f(x)$ 存在唯一的零点 $x_{0}$, 且 $x_{0}>$ 0 , 则实数 $\mathrm{a}$ 的取值范围是 ($\qquad$)
从以下选项中选择:    (A)$(1,+\infty)$ (B)$(2,+\infty)$ (C)$(-\infty,-1)$ (D)$(-\infty,-2)$""",
     r"""首先，我们可以通过求出函数的导函数 $f'(x)$ 来判断函数在 $x>0$ 区间内的单调性。在这里，我们求出导函数 $f'(x)$ 为 $f'(x)=3ax^2-6x$。
然后，我们需要求出导函数 $f'(x)$ 的零点，以确定函数 $f(x)$ 在 $x>0$ 区间内的单调性。导函数 $f'(x)$ 的零点为 $x=0$ 和 $x=\frac{2}{\sqrt{a}}$。注意到 $x>0$，所以我们得到 $a<0$。此外，由于函数 $f(x)$ 在 $x=0$ 处的函数值为 $1$，因此不能有 $a=\frac{4}{3}$。
综上所述，当 $a$ 的取值范围为 $a<-\frac{4}{3}$ 时，函数 $f(x)$ 在 $x>0$ 区间内是单调递减的，此时存在唯一的零点 $x_0$。因此，答案为 $(-\infty,-2)$。
答案是 D"""),
    (r"""设 $\left\{a_{n}\right\}$ 是公差不为 0 的无穷等差数列, 则“ $\left\{a_{n}\right\}$ 为递增数列”是“存在正整数 $N_{0}$, 当 $n>N_{0}$ 时, $a_{n}>0$ ”的 ($\quad$)
从以下选项中选择:    (A)充分而不必要条件 (B)必要而不充分条件 (C)充分必要条件 (D)既不充分也不必要条件""",
     r"""首先，我们可以通过举例来判断该条件是充分还是必要条件。如果一个数列递增，那么它的公差一定大于 0，也就是存在正整数 $N_{0}$，当 $n>N_{0}$ 时，$a_{n}>0$。因此，“ $\left\{a_{n}\right\}$ 为递增数列”是“存在正整数 $N_{0}$, 当 $n>N_{0}$ 时, $a_{n}>0$ ”的必要条件。
接下来，我们需要判断是否充分。也就是说，如果存在正整数 $N_{0}$，当 $n>N_{0}$ 时，$a_{n}>0$，那么能否得出“ $\left\{a_{n}\right\}$ 为递增数列”这一结论。
答案是肯定的。因为如果 $a_{n}>0$，那么 $a_{n+1}-a_{n}>0$，即公差大于 0，因此该数列是递增的。因此，该条件是充分条件。
综上所述，选项为 (C) 充分必要条件。
答案是 C"""),
]

GAOKAO_MATHCLOZE_EXEMPLARS: list[tuple[str, str]] = [
    (r"设数列 $\left\{a_{n}\right\}$ 的前 $n$ 项和为 $S_{n}$, 且 $a_{1}=-1, a_{n+1}=S_{n+1} S_{n}$, 则 $S_{n}=(\quad)$.",
     r"""让我们写出这个数列的前n项和：
$S_n = a_1 + a_2 + ... + a_n$
$S_n = -1 + (S_2 S_1) + (S_3 S_2) + ... + (S_{n+1} S_n)$
$S_n = -1 + (S_2 S_1) + (S_3 S_2) + ... + (S_n S_{n-1}) + (S_{n+1} S_n)$
$S_n = -1 + S_n (S_{n+1} - S_1)$
$S_n - S_n S_{n+1} = -1 - S_n$
$S_n (1 - S_{n+1}) = -1 - S_n$
$S_n = -\frac{1}{1 - S_{n+1}}$
因为这个数列后面的所有项都是0，我们可以看到对于所有$n\geq 1$，$S_{n+1} = 0$。因此，我们有：
$S_n = -\frac{1}{1 - S_{n+1}} = -\frac{1}{1 - 0} = -1$
这个数列前n项和的公式是$S_n = -\frac{1}{n}$。
答案是 $-\frac{1}{n}$"""),
    (r"若 $\left(x+\frac{1}{x}\right)^{n}$ 的展开式中第 3 项与第 7 项的二项式系数相等, 则该展 开式中 $\frac{1}{x^{2}}$ 的系数为 $(\quad)$.",
     r"""由题意可得, $c_{n}^{2}=c_{n}^{6}$
$\therefore n=8$
展开式的通项 T_{r+1}=C_8^r x^{8-r}\left(\frac{1}{x}\right)^r=C_8^r x^{8-2 r}$
令 $8-2 r=-2$ 可得 $r=5$
此时系数为 $c_{8}^{5}=56$
答案是 56"""),
    (r"函数 $\mathrm{f}(\mathrm{x})=\sin (\mathrm{x}+2 \phi)-2 \sin \phi \cos (\mathrm{x}+\phi)$ 的最大值为 $(\quad)$.",
     r"""函数 $f(x)=\sin (x+2 \phi)-2 \sin \phi \cos (x+\phi)=\sin [(x+\phi)+\phi]-$ $2 \sin \phi \cos (x+\phi)$
$=\sin (x+\phi) \cos \phi+\cos (x+\phi) \sin \phi-2 \sin \phi \cos (x+\phi)=\sin (x+\phi) \cos \phi-\cos$ $(x+\phi) \sin \phi$ $=\sin [(x+\phi)-\phi]=\sin x$
故函数 $f(x)$ 的最大值为 1
答案是 1"""),
    (r"已知向量 $\vec{a}=(3,1), \vec{b}=(1,0), \vec{c}=\vec{a}+k \vec{b}$. 若 $\vec{a} \perp \vec{c}$, 则 $k=(\quad)$",
     r"""\because \vec{a}=(3,1), \vec{b}=(1,0), \therefore \vec{c}=\vec{a}+k \vec{b}=(3+k, 1)$ ，
$\because \vec{a} \perp \vec{c}, \therefore \vec{a} \square \vec{c}=3(3+k)+1 \times 1=0$, 解得 $k=-\frac{10}{3}$
答案是 $-\frac{10}{3}$"""),
    (r"设向量 $\vec{a}, \vec{b}$ 不平行, 向量 $\lambda \vec{a}+\vec{b}$ 与 $\vec{a}+2 \vec{b}$ 平行, 则实数 $\lambda=(\quad)$.",
     r"""$\because$ 向量 $\vec{a}, \vec{b}$ 不平行, 向量 $\lambda \vec{a}+\vec{b}$ 与 $\vec{a}+2 \vec{b}$ 平行,
$\therefore \lambda \vec{a}+\vec{b}=t(\vec{a}+2 \vec{b})=t \vec{a}+2 t \vec{b}$
$\therefore\left\{\begin{array}{c}\lambda=\mathrm{t} \\ 1=2 \mathrm{t},\end{array}\right.$ 解得实数 $\lambda=\frac{1}{2}$.
答案是 $\frac{1}{2}$"""),
]


# ------------------------------------------------------------------------------------------
# Benchmark definitions
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark: where its rows are, how a question is read, and its few-shot layout."""

    name: str
    relative_path: str
    language: str  # "en" or "zh": picks the zero-shot instruction
    exemplars: tuple[tuple[str, str], ...]
    exemplar_template: str  # with {i}, {question}, {answer}
    query_template: str  # with {i}, {question}
    separator: str
    stop: tuple[str, ...]

    @property
    def default_shots(self) -> int:
        return len(self.exemplars)


BENCHMARKS: dict[str, BenchmarkSpec] = {
    "gsm8k": BenchmarkSpec(
        "gsm8k", "gsm8k/test.jsonl.gz", "en", tuple(GSM8K_EXEMPLARS),
        "Q: {question}\nA: {answer}", "Q: {question}\nA:", "\n\n\n", ("\nQ:",)),
    "math": BenchmarkSpec(
        "math", "math/MATH_test.jsonl.gz", "en", tuple(MATH_EXEMPLARS),
        "Problem:\n{question}\n\nSolution:\n{answer}", "Problem:\n{question}\n\nSolution:", "\n\n",
        ("\nProblem:",)),
    "cmath": BenchmarkSpec(
        "cmath", "cmath/test.jsonl.gz", "zh", tuple(CMATH_EXEMPLARS),
        "问题：{question}\n答案：{answer}", "问题：{question}\n答案：", "\n\n\n", ("\n问题：",)),
    "gaokao_mathqa": BenchmarkSpec(
        "gaokao_mathqa", "agieval_gaokao/gaokao-mathqa.jsonl.gz", "zh", tuple(GAOKAO_MATHQA_EXEMPLARS),
        "问题 {i}.    {question}\n问题 {i}的解析:   {answer}", "问题 {i}.    {question}\n问题 {i}的解析:", "\n\n\n",
        ("\n问题 ",)),
    "gaokao_mathcloze": BenchmarkSpec(
        "gaokao_mathcloze", "agieval_gaokao/gaokao-mathcloze.jsonl.gz", "zh", tuple(GAOKAO_MATHCLOZE_EXEMPLARS),
        "问题 {i}.   {question}\n问题 {i}的解析:   {answer}", "问题 {i}.   {question}\n问题 {i}的解析:", "\n\n\n",
        ("\n问题 ",)),
}


_ALIASES = {"mathqa": "gaokao_mathqa", "mathcloze": "gaokao_mathcloze",
            "agieval_gaokao_mathqa": "gaokao_mathqa", "agieval_gaokao_mathcloze": "gaokao_mathcloze"}


def get_benchmark(name: str) -> BenchmarkSpec:
    """The spec of a benchmark by name or alias (``gaokao-mathqa``); a clear error for unknown names."""
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}")
    return BENCHMARKS[key]


@dataclass(frozen=True)
class EvalItem:
    """One problem to evaluate: its id, the question text as prompted, and the gold answer."""

    benchmark: str
    index: int
    question: str
    gold: str


def question_text(row: dict, benchmark: str) -> str | None:
    """The question of one row as the prompts present it (MathQA: options appended as in the harness)."""
    if benchmark == "gsm8k":
        return row.get("question")
    if benchmark == "math":
        return row.get("problem")
    if benchmark == "cmath":
        return row.get("question")
    if benchmark == "gaokao_mathqa":
        question = (row.get("question") or "").strip().rstrip("\\").strip()
        options = " ".join(str(opt).strip() for opt in row.get("options") or [])
        return f"{question}\n从以下选项中选择:    {options}" if question else None
    if benchmark == "gaokao_mathcloze":
        return row.get("question")
    return row.get("question") or row.get("problem")


def read_rows(path: str | Path) -> Iterator[dict]:
    """JSON rows of a ``.jsonl`` or ``.jsonl.gz`` file; a line that is not JSON raises with its number."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not a JSON line: {exc}") from exc


def load_benchmark(name: str, benchmark_dir: str | Path | None = None, limit: int | None = None
                   ) -> tuple[list[EvalItem], dict[str, int]]:
    """The first ``limit`` usable items of a benchmark, and the counts of rows skipped by reason.

    A row without a question or without an extractable gold answer is skipped and counted
    (``skipped:no_question`` / ``skipped:no_gold``), never silently dropped.
    """
    spec = get_benchmark(name)
    path = Path(benchmark_dir or BENCHMARK_DIR) / spec.relative_path
    if not path.exists() and path.suffix == ".gz":
        path = path.with_suffix("")  # also accept an uncompressed copy
    if not path.exists():
        raise FileNotFoundError(f"benchmark {spec.name}: {path} not found")
    items: list[EvalItem] = []
    skipped: dict[str, int] = {}
    for index, row in enumerate(read_rows(path)):
        if limit is not None and len(items) >= limit:
            break
        question = question_text(row, spec.name)
        gold = gold_answer(row, spec.name)
        reason = "no_question" if not question else "no_gold" if gold is None else None
        if reason:
            skipped[f"skipped:{reason}"] = skipped.get(f"skipped:{reason}", 0) + 1
            continue
        items.append(EvalItem(spec.name, index, question.strip(), gold))
    return items, skipped


def few_shot_prompt(spec: BenchmarkSpec, question: str, shots: int | None = None) -> str:
    """The few-shot chain-of-thought prompt for one question (the first ``shots`` exemplars)."""
    n = spec.default_shots if shots is None else shots
    if not 0 <= n <= len(spec.exemplars):
        raise ValueError(f"{spec.name}: shots must be in 0..{len(spec.exemplars)}, got {n}")
    parts = [spec.exemplar_template.format(i=i + 1, question=q, answer=a) for i, (q, a) in enumerate(spec.exemplars[:n])]
    parts.append(spec.query_template.format(i=n + 1, question=question))
    return spec.separator.join(parts)


def chat_prompt(spec: BenchmarkSpec, question: str, tokenizer=None) -> str:
    """The zero-shot chain-of-thought prompt through the tokenizer's chat template (plain layout if none)."""
    instruction = COT_INSTRUCTION_ZH if spec.language == "zh" else COT_INSTRUCTION_EN
    content = f"{question}\n{instruction}"
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                             add_generation_prompt=True)
    return f"User: {content}\n\nAssistant:"


def build_prompt(spec: BenchmarkSpec, question: str, style: str = "few_shot", shots: int | None = None,
                 tokenizer=None) -> str:
    """The prompt for ``style`` ``few_shot`` or ``chat``."""
    if style == "few_shot":
        return few_shot_prompt(spec, question, shots)
    if style == "chat":
        return chat_prompt(spec, question, tokenizer)
    raise ValueError(f"prompt style must be 'few_shot' or 'chat', got {style!r}")


def stop_strings(spec: BenchmarkSpec, style: str) -> tuple[str, ...]:
    """Where generation stops: the next exemplar header in few-shot mode; nothing extra in chat mode."""
    return spec.stop if style == "few_shot" else ()


def cut_at_stop(completion: str, stops: tuple[str, ...]) -> str:
    """The completion up to the first stop string (the stop string itself removed)."""
    cut = len(completion)
    for stop in stops:
        pos = completion.find(stop)
        if pos != -1:
            cut = min(cut, pos)
    return completion[:cut]
